#!/usr/bin/env python3
"""Write tokens.txt, words.txt and lexicon.txt of a BPE lang directory.

Needs ``<lang-dir>/bpe.model`` and ``<lang-dir>/transcript_words.txt`` (the
training transcripts, one per line).  Every word of the transcripts is spelled
with the BPE model; a word that would need ``<unk>`` is an error naming the
word.

Outputs:

* ``tokens.txt``  -- every sentencepiece piece with its id (``<blk>`` 0,
  ``<sos/eos>`` 1, ``<unk>`` 2);
* ``words.txt``   -- ``<eps>`` 0, the sorted words, then ``#0``, ``<s>``, ``</s>``;
* ``lexicon.txt`` -- ``WORD piece1 piece2 ...``.

``--extra-text`` adds the words of more text files (an LM's extra training text, such as
Switchboard's Fisher transcripts) to words.txt and lexicon.txt.

Usage:

    python ../../../local/prepare_lang_bpe.py --lang-dir data/lang_bpe_64
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from allinone.data.lang import (
    LexiconError,
    build_lexicon,
    collect_words,
    write_lexicon,
    write_tokens,
    write_words,
)
from allinone.utils.log import setup_script_logging


def get_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--lang-dir", type=Path, required=True, help="directory with bpe.model and transcript_words.txt"
    )
    p.add_argument(
        "--extra-text",
        type=Path,
        nargs="*",
        default=[],
        help="more transcripts whose words join the lexicon (e.g. an LM's extra training text)",
    )
    return p.parse_args(argv)


def main(argv=None) -> None:
    import sentencepiece as spm

    setup_script_logging()
    args = get_args(argv)
    model = args.lang_dir / "bpe.model"
    transcript = args.lang_dir / "transcript_words.txt"
    for path in (model, transcript, *args.extra_text):
        if not path.is_file():
            raise SystemExit(f"required file not found: {path}")
    sp = spm.SentencePieceProcessor(model_file=str(model))
    words = []
    for path in (transcript, *args.extra_text):
        with open(path, encoding="utf-8") as f:
            words += collect_words(f)
    words = sorted(set(words))
    if not words:
        raise SystemExit(f"{transcript} contains no words")
    try:
        lexicon = build_lexicon(sp, words)
    except LexiconError as e:
        raise SystemExit(f"cannot build {args.lang_dir}/lexicon.txt: {e}") from None
    write_tokens(sp, args.lang_dir / "tokens.txt")
    write_words(words, args.lang_dir / "words.txt")
    write_lexicon(lexicon, args.lang_dir / "lexicon.txt")
    pieces_per_word = sum(len(p) for p in lexicon.values()) / len(lexicon)
    logging.info(
        f"{args.lang_dir}: {sp.get_piece_size()} tokens, {len(words)} words, "
        f"{pieces_per_word:.2f} pieces per word on average"
    )


if __name__ == "__main__":
    main()
