#!/usr/bin/env python3
r"""Export one subnet of a fine-tuned wav2vec 2.0 / HuBERT checkpoint as a packed low-bit file.

Usage (from egs/synth_digits/ASR):

  ./wav2vec2_ctc/export.py --epoch 10 --exp-dir wav2vec2_ctc/exp --subnet d3-w0.5-b4

Decode the file with ./wav2vec2_ctc/decode.py --packed-model wav2vec2_ctc/exp/d3-w0.5-b4.aio.
"""

from allinone.deploy.export_cli import export_main

if __name__ == "__main__":
    export_main(__doc__)
