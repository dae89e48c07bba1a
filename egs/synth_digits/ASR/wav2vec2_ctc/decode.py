#!/usr/bin/env python3
r"""Decode the synthetic-digits test sets with a fine-tuned wav2vec 2.0 / HuBERT CTC model.

Usage (from egs/synth_digits/ASR):

  ./wav2vec2_ctc/decode.py --epoch 10 --avg 1 --exp-dir wav2vec2_ctc/exp --subnets all
  ./wav2vec2_ctc/decode.py --epoch 10 --avg 1 --exp-dir wav2vec2_ctc/exp --decoding-method 1best

CTC greedy search by default; H / HL / HLG graphs as in conformer_transducer/decode.py.
"""

from pathlib import Path

from allinone.decoding.recipe import decode_main

DECODE_DEFAULTS = {"exp_dir": Path("wav2vec2_ctc/exp"), "decoding_method": "ctc-greedy-search"}

if __name__ == "__main__":
    decode_main(DECODE_DEFAULTS, __doc__)
