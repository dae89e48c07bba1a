#!/usr/bin/env python3
r"""Build the CTC decoding graphs of a BPE lang directory with kaldifst.

Usage:

    python ../../../local/prepare_ctc_graphs.py --lang-dir data/lang_bpe_64 \
        --arpa data/lm/G_3_gram.arpa

Needs tokens.txt, words.txt (with #0, <s>, </s>) and lexicon.txt (local/prepare_lang_bpe.py)
and an ARPA LM (local/train_ngram_lm.py). Writes to --lang-dir:

* ``lexicon_disambig.txt`` -- the lexicon with ``#k`` where a pronunciation repeats or
  prefixes another;
* ``tokens.txt``           -- rewritten with ``#0 .. #K`` appended after the model's tokens;
* ``L.fst``, ``L_disambig.fst``, ``G.fst`` (from the ARPA, via kaldilm);
* ``H.fst`` (CTC topology), ``HL.fst`` (no LM) and ``HLG.fst``.
"""

import argparse
import logging
from pathlib import Path

from allinone.data.lang import read_lexicon, read_symbol_table
from allinone.decoding import graphs
from allinone.utils.log import setup_script_logging


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lang-dir", type=Path, required=True)
    p.add_argument("--arpa", type=Path, required=True)
    args = p.parse_args()
    setup_script_logging()
    lang = args.lang_dir
    for name in ("tokens.txt", "words.txt", "lexicon.txt"):
        if not (lang / name).is_file():
            raise SystemExit(f"required file not found: {lang / name} (run local/prepare_lang_bpe.py)")
    if not args.arpa.is_file():
        raise SystemExit(f"ARPA file not found: {args.arpa} (run local/train_ngram_lm.py)")

    model_tokens = {t: i for t, i in read_symbol_table(lang / "tokens.txt").items() if not t.startswith("#")}
    words = graphs.extend_word_table(read_symbol_table(lang / "words.txt"))
    entries, max_k = graphs.add_disambig_symbols(read_lexicon(lang / "lexicon.txt"))
    tokens = graphs.extend_token_table(model_tokens, max_k)
    with open(lang / "lexicon_disambig.txt", "w", encoding="utf-8") as f:
        f.writelines(f"{w} {' '.join(p)}\n" for w, p in entries)
    with open(lang / "tokens.txt", "w", encoding="utf-8") as f:
        f.writelines(f"{t} {i}\n" for t, i in sorted(tokens.items(), key=lambda kv: kv[1]))
    with open(lang / "words.txt", "w", encoding="utf-8") as f:
        f.writelines(f"{w} {i}\n" for w, i in sorted(words.items(), key=lambda kv: kv[1]))

    disambig = {tokens[f"#{k}"] + 1 for k in range(max_k + 1)}
    H = graphs.ctc_topo(len(model_tokens))
    L = graphs.relabel_input(graphs.lexicon_fst(entries, tokens, words, loop_disambig=False), disambig)
    L_disambig = graphs.lexicon_fst(entries, tokens, words, loop_disambig=True)
    G = graphs.grammar_fst(args.arpa, lang / "words.txt")
    out = {
        "H.fst": H,
        "L.fst": L,
        "L_disambig.fst": L_disambig,
        "G.fst": G,
        "HL.fst": graphs.build_hl(H, L),
        "HLG.fst": graphs.build_hlg(H, L_disambig, G, sorted(disambig)),
    }
    for name, fst in out.items():
        fst.write(str(lang / name))
        arcs = sum(fst.num_arcs(s) for s in range(fst.num_states))
        logging.info(f"{lang / name}: {fst.num_states} states, {arcs} arcs")
    logging.info(f"{len(model_tokens)} tokens, {len(words)} words, disambiguation symbols #0..#{max_k}")


if __name__ == "__main__":
    main()
