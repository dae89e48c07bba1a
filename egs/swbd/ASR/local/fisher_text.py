#!/usr/bin/env python3
"""Fisher English transcripts as LM training text, cleaned as Switchboard's are.

Reads every ``fe_03_*.txt`` under the given directories (LDC2004T19 / LDC2005T19, e.g.
``fe_03_p1_tran/data/trans``; lines ``START END A: words``, ``#`` lines are comments) and
writes one cleaned utterance per line (:func:`allinone.utils.text_norm.clean_swbd_transcript`).
Only the text is used: Fisher's audio is not part of this recipe.

Usage (from egs/swbd/ASR):

    python local/fisher_text.py --out data/lm/fisher_text.txt \\
        download/LDC2004T19/fe_03_p1_tran/data/trans download/LDC2005T19/fe_03_p2_tran/data/trans
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Iterator

from allinone.utils.log import setup_script_logging
from allinone.utils.text_norm import clean_swbd_transcript


def fisher_utterances(path: Path) -> Iterator[str]:
    """Cleaned, non-empty utterance texts of one Fisher transcript file."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            fields = line.split(maxsplit=3)
            if len(fields) < 4 or line.startswith("#"):
                continue
            text = clean_swbd_transcript(fields[3])
            if text:
                yield text


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dirs", type=Path, nargs="+", help="directories searched for fe_03_*.txt")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    setup_script_logging()
    files = sorted(f for d in args.dirs for f in d.rglob("fe_03_*.txt"))
    if not files:
        raise SystemExit(f"fisher_text.py: no fe_03_*.txt transcript under {' '.join(map(str, args.dirs))}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f"tmp_{args.out.name}")
    n = 0
    with open(tmp, "w", encoding="utf-8") as out:
        for path in files:
            for text in fisher_utterances(path):
                out.write(text + "\n")
                n += 1
    tmp.replace(args.out)
    logging.info(f"{args.out}: {n} utterances from {len(files)} Fisher transcripts")


if __name__ == "__main__":
    main()
