"""What a recipe's ``onnx_decode.py`` does: decode test sets with exported ONNX files.

Two engines:

- ``sherpa-onnx``: ``sherpa_onnx.OfflineRecognizer`` reads each cut's audio and computes
  its own fbank (kaldi-native-fbank), as a deployed recogniser does; transducer greedy or
  modified beam search, or CTC greedy search on ``ctc-<subnet>.onnx``. The real-time
  factor includes its feature extraction.
- ``onnxruntime``: the cuts' stored training features through onnxruntime sessions and
  the repository's own searches (``allinone.deploy.onnx_runtime``), every CTC method of
  ``decode.py`` included (H/HL/HLG graphs on the ONNX log-probabilities). Its real-time
  factor, like ``decode.py``'s, excludes feature extraction.

Result files are ``decode.py``'s (``recogs-``, ``errs-``, ``wer-summary-``), with the suffix
``<subnet>-<variant>`` (variant ``fp32``, ``int8`` or ``int8-codes``), plus
``onnx-summary-<key>-<subnet>-<variant>.json``: WER, audio seconds, decoding seconds and
real-time factor per test set.
"""

import argparse
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from tqdm import tqdm

from allinone.data.batch import unpack_batch
from allinone.data.datamodule import AsrDataModule, load_split
from allinone.data.tokenizer import BpeTokenizer
from allinone.decoding.ctc_search import CTC_BACKENDS, CTC_METHODS, CtcSearcher
from allinone.decoding.recipe import TEST_SETS
from allinone.decoding.result_files import decoding_key, save_results
from allinone.decoding.transducer_search import greedy_search_batch, modified_beam_search
from allinone.deploy.onnx_runtime import (
    OnnxCtc,
    OnnxModelError,
    OnnxTransducer,
    check_onnx_model,
    parts_for,
)
from allinone.utils.log import setup_logger
from allinone.utils.options import add_dataclass_arguments, dataclass_from_args, option
from allinone.utils.text_norm import SCHEMES, normalize_results

ENGINES = ("sherpa-onnx", "onnxruntime")
SHERPA_METHODS = ("greedy_search", "modified_beam_search", "ctc-greedy-search")
ONNX_METHODS = ("greedy_search", "modified_beam_search") + CTC_METHODS
Result = Tuple[str, List[str], List[str]]


@dataclass
class OnnxDecodeOptions:
    """The settings of ``onnx_decode.py``; each field is a flag."""

    onnx_dir: Path = option(Path("conformer_transducer/exp/onnx"), "directory export-onnx.py wrote")
    subnet: str = option("", "the exported subnet's name (the <subnet> of encoder-<subnet>.onnx)")
    variant: str = option(
        "fp32", "which files: fp32, int8 (dynamic) or int8-codes", ("fp32", "int8", "int8-codes")
    )
    engine: str = option("sherpa-onnx", "decoder: sherpa-onnx, or onnxruntime with our searches", ENGINES)
    decoding_method: str = option(
        "greedy_search", "search method (sherpa-onnx: " + ", ".join(SHERPA_METHODS) + ")", ONNX_METHODS
    )
    beam_size: int = option(4, "modified_beam_search: hypotheses kept")
    blank_penalty: float = option(0.0, "transducer methods: subtracted from the blank logit (as decode.py)")
    num_threads: int = option(1, "intra-op threads; 1 makes the real-time factor a one-core figure")
    manifest_dir: Path = option(Path("data/fbank"), "directory of the cut manifests")
    cuts_prefix: str = option("synth_digits_cuts", "manifests are <cuts-prefix>_<split>.jsonl.gz")
    test_sets: Tuple[str, ...] = option(TEST_SETS, "comma-separated split names")
    max_duration: float = option(300.0, "onnxruntime engine: seconds of audio per batch")
    bpe_model: Path = option(Path("data/lang_bpe_64/bpe.model"), "onnxruntime engine: the BPE model")
    lang_dir: Path = option(Path("data/lang_bpe_64"), "onnxruntime engine: graphs for CTC methods")
    search_beam: float = option(20.0, "graph search beam (CTC methods)")
    max_active: int = option(7000, "graph search: most active states per frame")
    ngram_lm_scale: float = option(1.0, "1best: weight of the n-gram LM")
    ctc_backend: str = option("auto", "graph search backend", CTC_BACKENDS)
    score_normalization: str = option("none", "text normalisation before scoring (as decode.py)", SCHEMES)
    res_dir: Optional[Path] = option(None, "default: <onnx-dir>/<engine>-<decoding-method>")

    def check(self) -> None:
        if not self.subnet:
            raise ValueError("--subnet is required (the name in encoder-<subnet>.onnx)")
        if self.blank_penalty and self.decoding_method in CTC_METHODS:
            raise ValueError(f"--blank-penalty applies to transducer search, not to {self.decoding_method}")
        if self.engine == "sherpa-onnx" and self.decoding_method not in SHERPA_METHODS:
            raise ValueError(
                f"sherpa-onnx decodes with {', '.join(SHERPA_METHODS)}; "
                f"use --engine onnxruntime for {self.decoding_method}"
            )

    @property
    def key(self) -> str:
        return decoding_key(self.decoding_method, self.beam_size, self.search_beam, self.ngram_lm_scale)

    @property
    def suffix(self) -> str:
        """``<subnet>-<variant>``, ending in ``-blank-penalty-P`` for a non-zero penalty (as decode.py)."""
        penalty = f"-blank-penalty-{self.blank_penalty:g}" if self.blank_penalty else ""
        return f"{self.subnet}-{self.variant}{penalty}"

    @property
    def output_dir(self) -> Path:
        return self.res_dir or self.onnx_dir / f"{self.engine}-{self.decoding_method}"


def recognize_onnx(
    model: OnnxTransducer,
    x: torch.Tensor,
    x_lens: torch.Tensor,
    method: str,
    beam: int = 4,
    blank_penalty: float = 0.0,
) -> Sequence[Sequence[int]]:
    """Token ids of a batch (N, T, F), (N,) by transducer greedy or modified beam search."""
    enc, enc_lens = model.encode(x, x_lens)
    if method == "greedy_search":
        return greedy_search_batch(model, enc, enc_lens, blank_penalty=blank_penalty)
    if method == "modified_beam_search":
        return modified_beam_search(model, enc, enc_lens, beam=beam, blank_penalty=blank_penalty)
    raise ValueError(f"unknown transducer decoding method {method!r}")


def sherpa_recognizer(options: OnnxDecodeOptions):
    """A ``sherpa_onnx.OfflineRecognizer`` of the exported files, each checked first.

    sherpa-onnx's loader ends the process on a damaged file or a missing metadata key, so
    every file is opened with onnxruntime and checked here, where the error can name it.
    """
    import sherpa_onnx

    ctc = options.decoding_method in CTC_METHODS
    paths = parts_for(options.onnx_dir, options.subnet, options.variant, ctc=ctc)
    for part, path in paths.items():
        if check_onnx_model(path, part).get("input") == "waveform":
            raise OnnxModelError(
                f"{path} reads the waveform; sherpa-onnx's CTC loaders feed fbank: use --engine onnxruntime"
            )
    tokens = options.onnx_dir / "tokens.txt"
    if not tokens.is_file():
        raise OnnxModelError(f"{tokens}: no such file (export-onnx.py writes it)")
    if ctc:
        return sherpa_onnx.OfflineRecognizer.from_zipformer_ctc(
            model=str(paths["ctc"]), tokens=str(tokens), num_threads=options.num_threads,
            decoding_method="greedy_search",
        )  # fmt: skip
    return sherpa_onnx.OfflineRecognizer.from_transducer(
        encoder=str(paths["encoder"]), decoder=str(paths["decoder"]), joiner=str(paths["joiner"]),
        tokens=str(tokens), num_threads=options.num_threads, decoding_method=options.decoding_method,
        max_active_paths=options.beam_size, blank_penalty=options.blank_penalty,
    )  # fmt: skip


def decode_with_sherpa(recognizer, cuts) -> Tuple[List[Result], float, float]:
    """Recognise every cut's audio one stream at a time.

    Returns:
        (results, audio seconds, seconds spent in sherpa-onnx: features, network and search).
    """
    results, audio_seconds, seconds = [], 0.0, 0.0
    for cut in tqdm(cuts, desc="sherpa-onnx", leave=False):
        samples = cut.load_audio()
        samples = samples.mean(axis=0) if samples.ndim > 1 else samples
        t0 = time.perf_counter()
        stream = recognizer.create_stream()
        stream.accept_waveform(cut.sampling_rate, samples)
        recognizer.decode_stream(stream)
        seconds += time.perf_counter() - t0
        audio_seconds += cut.duration
        results.append((cut.id, cut.supervisions[0].text.split(), stream.result.text.split()))
    return results, audio_seconds, seconds


def decode_with_onnxruntime(
    model, loader, tokenizer, options, ctc_searcher=None
) -> Tuple[List[Result], float, float]:
    """Search the stored features of ``loader``'s batches with onnxruntime sessions.

    Returns:
        (results, audio seconds, seconds in the network and search).
    """
    results, audio_seconds, seconds = [], 0.0, 0.0
    for lhotse_batch in tqdm(loader, desc="onnxruntime", leave=False):
        batch = unpack_batch(lhotse_batch)
        t0 = time.perf_counter()
        if ctc_searcher is not None:
            words = ctc_searcher(*model.log_probs(batch.features, batch.feature_lens))
        else:
            hyps = recognize_onnx(
                model, batch.features, batch.feature_lens, options.decoding_method, options.beam_size,
                options.blank_penalty,
            )  # fmt: skip
            words = [tokenizer.decode(h).split() for h in hyps]
        seconds += time.perf_counter() - t0
        audio_seconds += sum(batch.durations)
        results += [(c, t.split(), w) for c, t, w in zip(batch.cut_ids, batch.texts, words)]
    return results, audio_seconds, seconds


def onnx_decode(options: OnnxDecodeOptions) -> Dict[str, Dict[str, float]]:
    """Decode ``options.test_sets`` and write the result files and the summary.

    Returns:
        test set -> {"wer", "audio_seconds", "decode_seconds", "rtf"}.
    """
    options.check()
    torch.set_num_threads(options.num_threads)
    ctc = options.decoding_method in CTC_METHODS
    tokenizer = None  # sherpa-onnx reads tokens.txt itself
    if options.engine == "sherpa-onnx":
        recognizer = sherpa_recognizer(options)
    else:
        tokenizer = BpeTokenizer(options.bpe_model)
        paths = parts_for(options.onnx_dir, options.subnet, options.variant, ctc=ctc)
        model = (
            OnnxCtc(paths["ctc"], options.num_threads) if ctc else OnnxTransducer(paths, options.num_threads)
        )
        searcher = None
        if ctc:
            searcher = CtcSearcher(options.decoding_method, tokenizer, tokenizer.vocab_size, options.lang_dir,
                                   options.search_beam, options.max_active, options.ngram_lm_scale,
                                   model.blank_id, options.ctc_backend)  # fmt: skip
        dm = AsrDataModule(max_duration=options.max_duration, num_workers=0, raw_audio=model.takes_waveform)
    out = options.output_dir  # after the models loaded: a wrong --onnx-dir leaves nothing behind
    setup_logger(out / f"log-onnx-decode-{options.suffix}")
    summary: Dict[str, Dict[str, float]] = {}
    for test_set in options.test_sets:
        cuts = load_split(options.manifest_dir, options.cuts_prefix, test_set)
        if options.engine == "sherpa-onnx":
            results, audio_seconds, seconds = decode_with_sherpa(recognizer, cuts)
        else:
            results, audio_seconds, seconds = decode_with_onnxruntime(
                model, dm.eval_dataloader(cuts), tokenizer, options, searcher
            )
        results = normalize_results(results, options.score_normalization)
        wers = save_results(out, test_set, {options.key: results}, options.suffix)
        summary[test_set] = {
            "wer": wers[options.key],
            "audio_seconds": audio_seconds,
            "decode_seconds": seconds,
            "rtf": seconds / max(audio_seconds, 1e-9),
        }
        logging.info(
            f"{options.suffix} {test_set}: WER {wers[options.key]:.2f}%, RTF {summary[test_set]['rtf']:.4f}"
        )
    path = out / f"onnx-summary-{options.key}-{options.suffix}.json"
    record = {"options": {k: str(v) for k, v in asdict(options).items()}, "test_sets": summary}
    path.write_text(json.dumps(record, indent=1) + "\n")
    return summary


def onnx_decode_main(defaults: Dict[str, object], description: str) -> None:
    """The whole ``onnx_decode.py`` of a recipe: flags (``defaults`` by field name), decoding, a table."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_dataclass_arguments(parser, OnnxDecodeOptions, defaults)
    args = parser.parse_args()
    try:
        options = dataclass_from_args(OnnxDecodeOptions, args)
        options.check()
    except ValueError as e:
        parser.error(str(e))
    try:
        summary = onnx_decode(options)
    except (OnnxModelError, FileNotFoundError, ValueError) as e:
        raise SystemExit(f"onnx_decode.py: {e}") from None
    print(f"| test set | WER ({options.engine}, {options.variant}) | RTF ({options.num_threads} thread) |")
    print("|---|---|---|")
    for test_set, row in summary.items():
        print(f"| {test_set} | {row['wer']:.2f} | {row['rtf']:.4f} |")
