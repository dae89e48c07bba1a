"""k2 backend of the graph-based CTC methods: graphs compiled with k2, pruned intersection, best path.

Used only when ``import k2`` works (it cannot be installed on the development machines
of this project, so this path is exercised by tests that skip without k2). The graphs
are compiled from the same lang directory as the kaldifst ones: the lexicon FSTs and G
are read with kaldifst and converted through OpenFst text, with the token labels shifted
back from ``id + 1`` (kaldi-decoder's convention) to k2's ``id`` (0 = blank/epsilon).
"""

from pathlib import Path
from typing import Dict, List

import torch

from allinone.losses.rnnt_k2 import import_k2


def _k2_from_fst_file(path: Path, shift_input: int):
    """Read an OpenFst binary with kaldifst and convert it to a k2 transducer."""
    import kaldifst

    k2 = import_k2()
    lines = []
    for line in kaldifst.StdVectorFst.read(str(path)).to_str().splitlines():
        cols = line.split()
        if len(cols) >= 4 and int(cols[2]) > 0:
            cols[2] = str(int(cols[2]) + shift_input)
        lines.append(" ".join(cols))
    return k2.Fsa.from_openfst("\n".join(lines) + "\n", acceptor=False)


def compile_graph(method: str, lang_dir: Path, vocab_size: int, words: Dict[str, int]):
    """H ("ctc-decoding"), HL ("hl") or HLG ("1best") as a k2 Fsa on the CPU."""
    k2 = import_k2()
    lang_dir = Path(lang_dir)
    H = k2.ctc_topo(max_token=vocab_size - 1, modified=False)
    if method == "ctc-decoding":
        return H
    if method == "hl":
        L = k2.arc_sort(_k2_from_fst_file(lang_dir / "L.fst", shift_input=-1))
        L = k2.arc_sort(k2.add_epsilon_self_loops(L))
        return k2.arc_sort(k2.connect(k2.compose(H, L, inner_labels="tokens")))
    L = k2.arc_sort(_k2_from_fst_file(lang_dir / "L_disambig.fst", shift_input=-1))
    G = k2.arc_sort(_k2_from_fst_file(lang_dir / "G.fst", shift_input=0))
    LG = k2.connect(k2.determinize(k2.connect(k2.compose(L, G))))
    # Disambiguation symbols: tokens from the first id past the model's vocabulary,
    # words from #0; both become epsilon once LG is determinized.
    LG.labels[LG.labels >= vocab_size] = 0
    LG.__dict__["_properties"] = None
    aux = LG.aux_labels
    values = aux.values if isinstance(aux, k2.RaggedTensor) else aux
    values[values >= words["#0"]] = 0
    LG = k2.connect(k2.remove_epsilon(LG))
    if isinstance(LG.aux_labels, k2.RaggedTensor):
        LG.aux_labels = LG.aux_labels.remove_values_eq(0)
    LG = k2.arc_sort(k2.add_epsilon_self_loops(k2.arc_sort(LG)))
    return k2.arc_sort(k2.connect(k2.compose(H, LG, inner_labels="tokens")))


def _best_path_labels(best) -> List[List[int]]:
    """Positive output labels of each FSA of a best-path FsaVec, as one list per FSA.

    ``best.arcs.shape()`` has axes [fsa][state][arc]; the state axis (and, for ragged
    labels, the arc axis) is removed so that each FSA's labels form one flat list.
    """
    k2 = import_k2()
    if isinstance(best.aux_labels, torch.Tensor):
        labels = k2.RaggedTensor(best.arcs.shape().remove_axis(1), best.aux_labels)
    else:
        aux = best.aux_labels.remove_values_leq(0)
        shape = best.arcs.shape().compose(aux.shape)  # [fsa][state][arc][label]
        labels = k2.RaggedTensor(shape, aux.values).remove_axis(1).remove_axis(1)
    return labels.remove_values_leq(0).tolist()


class K2GraphSearcher:
    """Batched CTC graph search with k2 (``intersect_dense_pruned`` + ``shortest_path``).

    Args:
        graph: from ``compile_graph``.
        search_beam, output_beam: pruning beams of the intersection.
        max_active: most active states per frame.
    """

    def __init__(self, graph, search_beam: float = 20.0, output_beam: float = 8.0, max_active: int = 7000):
        self.graph = graph
        self.search_beam = search_beam
        self.output_beam = output_beam
        self.max_active = max_active

    def __call__(
        self, log_probs: torch.Tensor, lens: torch.Tensor, acoustic_scale: float = 1.0
    ) -> List[List[int]]:
        """log_probs: (N, T, V); lens: (N,). Returns the output labels of each utterance's best path."""
        k2 = import_k2()
        order = torch.argsort(lens, descending=True)
        segments = torch.stack(
            [order.to(torch.int32), torch.zeros_like(order, dtype=torch.int32), lens[order].to(torch.int32)],
            1,
        )
        dense = k2.DenseFsaVec(log_probs.float() * acoustic_scale, segments)
        lattice = k2.intersect_dense_pruned(
            self.graph,
            dense,
            search_beam=self.search_beam,
            output_beam=self.output_beam,
            min_active_states=30,
            max_active_states=self.max_active,
        )
        labels = _best_path_labels(k2.shortest_path(lattice, use_double_scores=True))
        out: List[List[int]] = [[] for _ in range(len(lens))]
        for i, n in enumerate(order.tolist()):
            out[n] = labels[i]
        return out
