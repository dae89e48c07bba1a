#!/usr/bin/env python3
r"""Decode the test sets with a subnet exported by export-onnx.py: sherpa-onnx or onnxruntime.

Usage (from egs/synth_digits/ASR):

  # sherpa-onnx: its own fbank from each cut's audio, one thread
  ./conformer_transducer/onnx_decode.py --onnx-dir conformer_transducer/exp_all_in_one/onnx \
    --subnet d4-w0.5-b8 --variant int8 --engine sherpa-onnx --decoding-method modified_beam_search

  # onnxruntime with the repository's searches on the stored features (CTC graphs too)
  ./conformer_transducer/onnx_decode.py --onnx-dir conformer_transducer/exp_all_in_one/onnx \
    --subnet d4-w0.5-b8 --engine onnxruntime --decoding-method 1best

Writes recogs-*, errs-*, wer-summary-* (suffix <subnet>-<variant>) and onnx-summary-*.json
to <onnx-dir>/<engine>-<decoding-method>/ (or --res-dir).
"""

from allinone.decoding.onnx_recipe import onnx_decode_main

ONNX_DECODE_DEFAULTS = {}

if __name__ == "__main__":
    onnx_decode_main(ONNX_DECODE_DEFAULTS, __doc__)
