#!/usr/bin/env python3
r"""Train an interpolated Kneser-Ney word n-gram on transcripts and write it as ARPA.

Usage:

    python ../../../local/train_ngram_lm.py --text data/lang_bpe_64/transcript_words.txt \
        --order 3 --out data/lm/G_3_gram.arpa

Words are taken as whitespace-separated tokens, one sentence per line (blank lines skipped).
"""

import argparse
import logging
from pathlib import Path

from allinone.lm.kneser_ney import train_kneser_ney, write_arpa
from allinone.utils.log import setup_script_logging


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text", type=Path, required=True, help="one transcript per line")
    p.add_argument("--order", type=int, default=3)
    p.add_argument("--out", type=Path, required=True, help="output ARPA file")
    args = p.parse_args()
    setup_script_logging()
    if not args.text.is_file():
        raise SystemExit(f"transcript file not found: {args.text}")
    with open(args.text, encoding="utf-8") as f:
        sentences = [line.split() for line in f if line.strip()]
    if not sentences:
        raise SystemExit(f"{args.text} holds no sentences")
    model = train_kneser_ney(sentences, args.order)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_arpa(model, args.out)
    counts = ", ".join(f"{k}-grams {len(model.probs[k])}" for k in sorted(model.probs))
    logging.info(f"{args.out}: order {args.order} from {len(sentences)} sentences; {counts}")


if __name__ == "__main__":
    main()
