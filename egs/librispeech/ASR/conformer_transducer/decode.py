#!/usr/bin/env python3
r"""Decode LibriSpeech test-clean / test-other with a trained Conformer transducer.

Usage (from egs/librispeech/ASR):

  ./conformer_transducer/decode.py --epoch 30 --avg 10 --use-averaged-model true \
    --exp-dir conformer_transducer/exp_100h --decoding-method modified_beam_search --device cuda

  # CTC head through HLG (prepare.sh stage 5)
  ./conformer_transducer/decode.py --epoch 30 --avg 10 --exp-dir conformer_transducer/exp_100h \
    --decoding-method 1best

Result files as in every recipe: <exp-dir>/<decoding-method>/{recogs,errs,wer-summary}-*.
"""

from pathlib import Path

from allinone.decoding.recipe import decode_main

DECODE_DEFAULTS = {
    "bpe_model": Path("data/lang_bpe_500/bpe.model"),
    "lang_dir": Path("data/lang_bpe_500"),
    "cuts_prefix": "librispeech_cuts",
    "test_sets": ("test-clean", "test-other"),
}

if __name__ == "__main__":
    decode_main(DECODE_DEFAULTS, __doc__)
