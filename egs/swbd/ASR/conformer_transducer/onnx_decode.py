#!/usr/bin/env python3
r"""Decode the swbd test sets with a subnet exported by export-onnx.py (sherpa-onnx or onnxruntime).

Usage (from egs/swbd/ASR):

  ./conformer_transducer/onnx_decode.py --onnx-dir conformer_transducer/exp/onnx --subnet d12-w1.0-b4 \
    --variant int8-codes --engine sherpa-onnx --decoding-method modified_beam_search

Result files as decode.py's, in <onnx-dir>/<engine>-<decoding-method>/.
"""

from decode import DECODE_DEFAULTS  # the corpus's manifests, test sets and lang dir, kept in one place

from allinone.decoding.onnx_recipe import onnx_decode_main

if __name__ == "__main__":
    onnx_decode_main(DECODE_DEFAULTS, __doc__)
