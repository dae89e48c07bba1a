#!/usr/bin/env python3
r"""Decode LibriSpeech test-clean / test-other with a fine-tuned wav2vec 2.0 / HuBERT CTC model.

Usage (from egs/librispeech/ASR):

  ./wav2vec2_ctc/decode.py --epoch 30 --avg 5 --exp-dir wav2vec2_ctc/exp_100h \
    --bpe-model data/lang_char/bpe.model --subnets all --device cuda

CTC greedy search by default; --decoding-method 1best with a BPE lang dir's HLG.
"""

from pathlib import Path

from allinone.decoding.recipe import decode_main

DECODE_DEFAULTS = {
    "exp_dir": Path("wav2vec2_ctc/exp_100h"),
    "decoding_method": "ctc-greedy-search",
    "bpe_model": Path("data/lang_bpe_500/bpe.model"),
    "lang_dir": Path("data/lang_bpe_500"),
    "cuts_prefix": "librispeech_cuts",
    "test_sets": ("test-clean", "test-other"),
}

if __name__ == "__main__":
    decode_main(DECODE_DEFAULTS, __doc__)
