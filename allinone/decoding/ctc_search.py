"""CTC search: frame-wise greedy, and Viterbi beam search in an H/HL/HLG graph (kaldi-decoder)."""

import logging
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch

from allinone.data.lang import read_symbol_table


def ctc_greedy_search(log_probs: torch.Tensor, lens: torch.Tensor, blank_id: int = 0) -> List[List[int]]:
    """Best label per frame, repeats merged, blanks dropped.

    Args:
        log_probs: (N, T, V) CTC log-posteriors.
        lens: (N,) valid frames.
    Returns:
        N token-id lists.
    """
    best = log_probs.argmax(-1)
    out = []
    for n in range(best.size(0)):
        seq = best[n, : int(lens[n])].tolist()
        out.append([t for i, t in enumerate(seq) if t != blank_id and (i == 0 or t != seq[i - 1])])
    return out


class GraphDecoder:
    """Viterbi beam search of CTC posteriors through a decoding graph (kaldi-decoder's FasterDecoder).

    Args:
        fst: H, HL or HLG (``allinone.decoding.graphs`` label conventions).
        beam: search beam (graph + acoustic cost).
        max_active: most active states per frame.
        output_offset: subtracted from the output labels (1 for H, whose outputs are
            ``token_id + 1``; 0 for word-level graphs).
    """

    def __init__(self, fst, beam: float = 20.0, max_active: int = 7000, output_offset: int = 0):
        import kaldifst
        from kaldi_decoder import DecodableCtc, FasterDecoder, FasterDecoderOptions

        self._decodable = DecodableCtc
        self._linear_symbols = kaldifst.get_linear_symbol_sequence

        # FasterDecoder keeps a bare C++ reference to the graph: hold the Python object too.
        self.fst = fst
        self.decoder = FasterDecoder(fst, FasterDecoderOptions(beam=beam, max_active=max_active))
        self.output_offset = output_offset

    def decode(self, log_probs: torch.Tensor, acoustic_scale: float = 1.0) -> List[int]:
        """Best path's output labels for one utterance.

        Args:
            log_probs: (T, V) CTC log-posteriors of the valid frames.
            acoustic_scale: multiplies the log-posteriors; ``1 / ngram_lm_scale`` gives
                the usual acoustic + scale * LM trade-off up to an overall factor.
        Returns:
            output labels (minus ``output_offset``), epsilons removed.
        """
        feats = np.ascontiguousarray((log_probs.float() * acoustic_scale).cpu().numpy(), dtype=np.float32)
        self.decoder.decode(self._decodable(feats))
        ok, best_path = self.decoder.get_best_path()
        if not ok:
            logging.warning("graph search found no path; returning an empty hypothesis")
            return []
        ok, _, olabels, _ = self._linear_symbols(best_path)
        if not ok:
            return []
        return [label - self.output_offset for label in olabels if label != 0]


CTC_METHODS = ("ctc-greedy-search", "ctc-decoding", "hl", "1best")
GRAPH_FILES = {"ctc-decoding": "H.fst", "hl": "HL.fst", "1best": "HLG.fst"}


CTC_BACKENDS = ("auto", "kaldi", "k2")


def resolve_backend(backend: str) -> str:
    """ "auto" -> "k2" when k2 imports, else "kaldi"; explicit choices are checked."""
    if backend not in CTC_BACKENDS:
        raise ValueError(f"unknown CTC graph backend {backend!r}; choose from {CTC_BACKENDS}")
    if backend == "kaldi":
        return backend
    try:
        import k2  # noqa: F401
    except (ImportError, OSError):
        if backend == "k2":
            raise
        return "kaldi"
    return "k2"


class LangDirError(ValueError):
    """A lang directory that is missing or does not match the model."""


def check_lang_dir(lang_dir: Path, vocab_size: int, graph: Optional[str] = None) -> Dict[str, int]:
    """Validate ``lang_dir`` against a model with ``vocab_size`` outputs; return its word table.

    Raises:
        LangDirError: naming the missing file or the disagreeing token table.
    """
    lang_dir = Path(lang_dir)
    if not lang_dir.is_dir():
        raise LangDirError(f"lang dir {lang_dir} does not exist (run prepare.sh)")
    for name in ["tokens.txt", "words.txt"] + ([graph] if graph else []):
        if not (lang_dir / name).is_file():
            raise LangDirError(f"{lang_dir / name} not found (run prepare.sh up to its graph stage)")
    tokens = {t: i for t, i in read_symbol_table(lang_dir / "tokens.txt").items() if not t.startswith("#")}
    if len(tokens) != vocab_size or sorted(tokens.values()) != list(range(vocab_size)):
        raise LangDirError(
            f"{lang_dir / 'tokens.txt'} has {len(tokens)} tokens but the model has {vocab_size} outputs: "
            "the lang dir does not belong to this model"
        )
    return read_symbol_table(lang_dir / "words.txt")


class CtcSearcher:
    """Turns CTC log-posteriors into words with one of ``CTC_METHODS``.

    Args:
        method: "ctc-greedy-search" (no graph), "ctc-decoding" (H), "hl" (HL, lexicon only)
            or "1best" (HLG, lexicon and n-gram LM).
        tokenizer: turns token ids into words (greedy and H).
        vocab_size: the model's outputs, checked against the lang dir.
        lang_dir: holds tokens.txt, words.txt and the graphs (not needed for greedy).
        search_beam, max_active: graph search pruning.
        ngram_lm_scale: LM weight of "1best" (applied as acoustic scale 1 / lm_scale).
        backend: "kaldi" (kaldifst graphs, kaldi-decoder), "k2" (needs ``import k2``) or
            "auto" (k2 when it imports, else kaldi).
    """

    def __init__(
        self,
        method: str,
        tokenizer,
        vocab_size: int,
        lang_dir: Optional[Path] = None,
        search_beam: float = 20.0,
        max_active: int = 7000,
        ngram_lm_scale: float = 1.0,
        blank_id: int = 0,
        backend: str = "auto",
    ):
        if method not in CTC_METHODS:
            raise ValueError(f"unknown CTC decoding method {method!r}; choose from {CTC_METHODS}")
        self.method = method
        self.tokenizer = tokenizer
        self.blank_id = blank_id
        self.acoustic_scale = 1.0 / ngram_lm_scale if method == "1best" else 1.0
        self.decoder = self.k2_searcher = None
        self.backend = resolve_backend(backend)
        if method == "ctc-greedy-search":
            return
        if lang_dir is None:
            raise LangDirError(f"--decoding-method {method} needs --lang-dir")
        graph = GRAPH_FILES[method]
        words = check_lang_dir(lang_dir, vocab_size, graph)
        self.id2word = {i: w for w, i in words.items()}
        if self.backend == "k2":
            from allinone.decoding.ctc_k2 import K2GraphSearcher, compile_graph

            # k2's CTC topology outputs token ids themselves (no +1 shift).
            self.k2_searcher = K2GraphSearcher(
                compile_graph(method, lang_dir, vocab_size, words), search_beam, max_active=max_active
            )
        else:
            import kaldifst

            fst = kaldifst.StdVectorFst.read(str(Path(lang_dir) / graph))
            offset = 1 if graph == "H.fst" else 0
            self.decoder = GraphDecoder(fst, search_beam, max_active, output_offset=offset)

    def __call__(self, log_probs: torch.Tensor, lens: torch.Tensor) -> List[List[str]]:
        """log_probs: (N, T, V); lens: (N,). Returns N word lists."""
        if self.method == "ctc-greedy-search":
            hyps = ctc_greedy_search(log_probs, lens, self.blank_id)
            return [self.tokenizer.decode(ids).split() for ids in hyps]
        if self.k2_searcher is not None:
            all_labels = self.k2_searcher(log_probs, lens, self.acoustic_scale)
        else:
            log_probs = log_probs.cpu()  # kaldi-decoder searches on the CPU: one copy per batch
            all_labels = [
                self.decoder.decode(log_probs[n, : int(lens[n])], self.acoustic_scale)
                for n in range(len(lens))
            ]
        if self.method == "ctc-decoding":
            return [self.tokenizer.decode(labels).split() for labels in all_labels]
        return [[self.id2word[i] for i in labels] for labels in all_labels]
