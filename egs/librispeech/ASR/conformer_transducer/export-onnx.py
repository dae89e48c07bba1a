#!/usr/bin/env python3
r"""Export one subnet of a librispeech checkpoint to ONNX for sherpa-onnx (fp32, int8, int8 codes).

Usage (from egs/librispeech/ASR):

  ./conformer_transducer/export-onnx.py --epoch 30 --avg 10 --exp-dir conformer_transducer/exp_100h \
    --subnet d16-w1.0-b4

Files as in egs/synth_digits/ASR/conformer_transducer/export-onnx.py, in <exp-dir>/onnx/.
"""

from pathlib import Path

from allinone.deploy.export_onnx_cli import export_onnx_main

EXPORT_DEFAULTS = {"bpe_model": Path("data/lang_bpe_500/bpe.model")}

if __name__ == "__main__":
    export_onnx_main(__doc__, EXPORT_DEFAULTS)
