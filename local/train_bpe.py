#!/usr/bin/env python3
"""Train the sentencepiece BPE model of a lang directory.

Writes ``<lang-dir>/bpe.model`` from a transcript file with one sentence per
line.  Piece ids 0, 1 and 2 are reserved for ``<blk>`` (transducer blank),
``<sos/eos>`` and ``<unk>``; the model has no BOS/EOS pieces.  An existing
model is left alone.

Usage:

    python ../../../local/train_bpe.py --transcript data/lang_bpe_64/transcript_words.txt \\
        --lang-dir data/lang_bpe_64 --vocab-size 64
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from allinone.data.lang import train_bpe_model
from allinone.utils.log import setup_script_logging


def get_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--transcript", type=Path, required=True, help="text file, one transcript per line")
    p.add_argument("--lang-dir", type=Path, required=True, help="output directory for bpe.model")
    p.add_argument("--vocab-size", type=int, required=True, help="number of pieces, specials included")
    p.add_argument(
        "--model-type",
        default="bpe",
        choices=["bpe", "unigram", "char"],
        help="char: one piece per character (the wav2vec 2.0 papers' CTC units; --vocab-size bounds it)",
    )
    return p.parse_args(argv)


def main(argv=None) -> None:
    setup_script_logging()
    args = get_args(argv)
    model = args.lang_dir / "bpe.model"
    if model.is_file():
        logging.info(f"{model} exists, skipping")
        return
    if not args.transcript.is_file() or args.transcript.stat().st_size == 0:
        raise SystemExit(f"transcript file {args.transcript} is missing or empty")
    try:
        train_bpe_model(args.transcript, model, args.vocab_size, model_type=args.model_type)
    except RuntimeError as e:  # sentencepiece reports e.g. a vocabulary too large for the text
        raise SystemExit(f"sentencepiece training with vocab size {args.vocab_size} failed: {e}") from None
    logging.info(f"wrote {model} ({args.model_type}, {args.vocab_size} pieces)")


if __name__ == "__main__":
    main()
