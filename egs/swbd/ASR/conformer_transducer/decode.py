#!/usr/bin/env python3
r"""Decode eval2000 (and its Switchboard / CallHome halves) with a trained Conformer transducer.

Hypotheses and references are scored after Switchboard's normalisation
(``--score-normalization swbd``: hesitations, word fragments and non-speech tokens
removed, backchannels in one spelling; the rules are in ``allinone/utils/text_norm.py``).

Usage (from egs/swbd/ASR):

  ./conformer_transducer/decode.py --epoch 30 --avg 10 --use-averaged-model true \
    --exp-dir conformer_transducer/exp --decoding-method modified_beam_search --device cuda

  # CTC head through HLG (prepare.sh stage 6)
  ./conformer_transducer/decode.py --epoch 30 --avg 10 --exp-dir conformer_transducer/exp \
    --decoding-method 1best

Result files as in every recipe: <exp-dir>/<decoding-method>/{recogs,errs,wer-summary}-*.
"""

from pathlib import Path

from allinone.decoding.recipe import decode_main

DECODE_DEFAULTS = {
    "bpe_model": Path("data/lang_bpe_500/bpe.model"),
    "lang_dir": Path("data/lang_bpe_500"),
    "cuts_prefix": "swbd_cuts",
    "test_sets": ("eval2000", "eval2000-swbd", "eval2000-callhome"),
    "score_normalization": "swbd",
}

if __name__ == "__main__":
    decode_main(DECODE_DEFAULTS, __doc__)
