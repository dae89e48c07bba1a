"""The k2 graph backend agrees with kaldi-decoder (skipped where k2 does not import)."""

import pytest
import torch

pytest.importorskip("k2")
pytest.importorskip("kaldifst")

from allinone.decoding import graphs  # noqa: E402
from allinone.decoding.ctc_search import CtcSearcher  # noqa: E402
from allinone.lm.kneser_ney import train_kneser_ney, write_arpa  # noqa: E402
from tests.decoding.test_ctc_graphs import LEXICON, TOKENS, WORDS  # noqa: E402


class CharTokenizer:
    def decode(self, ids):
        inv = {i: t for t, i in TOKENS.items()}
        return " ".join(inv[i] for i in ids)


def write_lang(lang):
    entries, max_k = graphs.add_disambig_symbols(LEXICON)
    tokens = graphs.extend_token_table(TOKENS, max_k)
    words = graphs.extend_word_table(WORDS)
    (lang / "tokens.txt").write_text("".join(f"{t} {i}\n" for t, i in tokens.items()))
    (lang / "words.txt").write_text("".join(f"{w} {i}\n" for w, i in words.items()))
    write_arpa(train_kneser_ney([["A", "B"], ["AB"], ["B", "A", "B"]], 2), lang / "G.arpa")
    disambig = {tokens[f"#{k}"] + 1 for k in range(max_k + 1)}
    H = graphs.ctc_topo(len(TOKENS))
    L = graphs.relabel_input(graphs.lexicon_fst(entries, tokens, words, loop_disambig=False), disambig)
    L_disambig = graphs.lexicon_fst(entries, tokens, words, loop_disambig=True)
    G = graphs.grammar_fst(lang / "G.arpa", lang / "words.txt")
    for name, fst in {
        "H.fst": H, "L.fst": L, "L_disambig.fst": L_disambig, "G.fst": G,
        "HL.fst": graphs.build_hl(H, L), "HLG.fst": graphs.build_hlg(H, L_disambig, G, sorted(disambig)),
    }.items():  # fmt: skip
        fst.write(str(lang / name))


@pytest.mark.parametrize("method", ["ctc-decoding", "hl", "1best"])
def test_k2_and_kaldi_backends_find_the_same_best_paths(method, tmp_path):
    write_lang(tmp_path)
    torch.manual_seed(0)
    log_probs = (torch.randn(4, 9, 3) * 2).log_softmax(-1)
    lens = torch.tensor([9, 7, 5, 8])
    kw = dict(lang_dir=tmp_path, search_beam=30.0)
    kaldi = CtcSearcher(method, CharTokenizer(), 3, backend="kaldi", **kw)(log_probs, lens)
    k2_out = CtcSearcher(method, CharTokenizer(), 3, backend="k2", **kw)(log_probs, lens)
    assert k2_out == kaldi
