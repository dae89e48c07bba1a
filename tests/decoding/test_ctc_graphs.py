import itertools
import math

import pytest
import torch

pytest.importorskip("kaldifst")
pytest.importorskip("kaldi_decoder")
pytest.importorskip("kaldilm")

import kaldifst  # noqa: E402

from allinone.decoding import graphs  # noqa: E402
from allinone.decoding.ctc_search import GraphDecoder, ctc_greedy_search  # noqa: E402
from allinone.lm.kneser_ney import train_kneser_ney, write_arpa  # noqa: E402

TOKENS = {"<blk>": 0, "a": 1, "b": 2}
# "A" is a prefix of "AB", so L needs a disambiguation symbol.
LEXICON = {"A": ["a"], "AB": ["a", "b"], "B": ["b"]}
WORDS = {"<eps>": 0, "A": 1, "AB": 2, "B": 3}


def tiny_graphs(tmp_path):
    entries, max_k = graphs.add_disambig_symbols(LEXICON)
    assert max_k == 1 and ("A", ["a", "#1"]) in entries
    tokens = graphs.extend_token_table(TOKENS, max_k)
    words = graphs.extend_word_table(WORDS)
    (tmp_path / "words.txt").write_text("".join(f"{w} {i}\n" for w, i in words.items()))
    model = train_kneser_ney([["A", "B"], ["AB"], ["B", "A", "B"], ["A"]], order=2)
    write_arpa(model, tmp_path / "G.arpa")
    H = graphs.ctc_topo(len(TOKENS))
    L = graphs.lexicon_fst(entries, tokens, words, loop_disambig=False)
    L_disambig = graphs.lexicon_fst(entries, tokens, words, loop_disambig=True)
    G = graphs.grammar_fst(tmp_path / "G.arpa", tmp_path / "words.txt")
    disambig = [tokens[f"#{k}"] + 1 for k in range(max_k + 1)]
    HL = graphs.build_hl(H, graphs.relabel_input(L, set(disambig)))
    return H, HL, graphs.build_hlg(H, L_disambig, G, disambig), model


def path_cost(fst, alignment):
    """Cheapest path of ``fst`` accepting frame labels ``alignment`` (token ids): (cost, outputs)."""
    acceptor = kaldifst.make_linear_acceptor([t + 1 for t in alignment])
    kaldifst.arcsort(fst, sort_type="ilabel")
    composed = kaldifst.compose(acceptor, fst)
    if composed.num_states == 0:
        return math.inf, None
    best = kaldifst.shortest_path(composed)
    ok, _, olabels, weight = kaldifst.get_linear_symbol_sequence(best)
    assert ok
    return float(weight.value), [o for o in olabels if o]


@pytest.mark.parametrize("seed", range(4))
def test_h_decoding_equals_ctc_greedy(seed, tmp_path):
    torch.manual_seed(seed)
    H = graphs.ctc_topo(5)
    log_probs = (torch.randn(1, 30, 5) * 3).log_softmax(-1)
    hyp = GraphDecoder(H, beam=50.0, output_offset=1).decode(log_probs[0])
    assert hyp == ctc_greedy_search(log_probs, torch.tensor([30]))[0]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("which", ["HL", "HLG"])
def test_graph_decoder_returns_the_brute_force_best_path(seed, which, tmp_path):
    H, HL, HLG, _ = tiny_graphs(tmp_path)
    fst = {"HL": HL, "HLG": HLG}[which]
    torch.manual_seed(seed)
    log_probs = (torch.randn(5, 3) * 2).log_softmax(-1)
    best_cost, best_words = math.inf, None
    for alignment in itertools.product(range(3), repeat=5):
        graph_cost, words = path_cost(fst, alignment)
        cost = graph_cost - sum(float(log_probs[t, a]) for t, a in enumerate(alignment))
        if cost < best_cost - 1e-6:
            best_cost, best_words = cost, words
    assert GraphDecoder(fst, beam=100.0).decode(log_probs) == best_words


def test_hlg_outputs_only_lexicon_words(tmp_path):
    _, _, HLG, _ = tiny_graphs(tmp_path)
    decoder = GraphDecoder(HLG, beam=30.0)
    for seed in range(10):
        torch.manual_seed(seed)
        hyp = decoder.decode((torch.randn(12, 3) * 2).log_softmax(-1))
        assert set(hyp) <= {WORDS[w] for w in LEXICON}


def test_g_cost_of_a_training_sentence_is_its_lm_log_probability(tmp_path):
    *_, HLG, model = tiny_graphs(tmp_path)
    G = graphs.grammar_fst(tmp_path / "G.arpa", tmp_path / "words.txt")
    words = graphs.extend_word_table(WORDS)
    sentence = ["B", "A", "B"]
    cost, out = path_cost_words(G, [words[w] for w in sentence])
    history = ["<s>", *sentence]
    expected = -sum(math.log(model.prob(w, history[: i + 1])) for i, w in enumerate(sentence + ["</s>"]))
    assert out == [words[w] for w in sentence]
    assert cost == pytest.approx(expected, abs=1e-3)


def path_cost_words(G, word_ids):
    acceptor = kaldifst.make_linear_acceptor(word_ids)
    kaldifst.arcsort(G, sort_type="olabel")
    best = kaldifst.shortest_path(kaldifst.compose(G, acceptor))
    ok, _, olabels, weight = kaldifst.get_linear_symbol_sequence(best)
    assert ok
    return float(weight.value), [o for o in olabels if o]


def test_decoder_keeps_its_graph_alive():
    import gc

    decoder = GraphDecoder(graphs.ctc_topo(4), beam=20.0, output_offset=1)  # no other reference
    gc.collect()
    log_probs = torch.tensor([[0.0, -9, -9, -9], [-9, 0.0, -9, -9], [-9, -9, -9, 0.0]])
    assert decoder.decode(log_probs) == [1, 3]
