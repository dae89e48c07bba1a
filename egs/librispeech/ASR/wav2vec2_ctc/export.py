#!/usr/bin/env python3
r"""Export one subnet of a fine-tuned LibriSpeech wav2vec 2.0 / HuBERT checkpoint as a packed file.

Usage (from egs/librispeech/ASR):

  ./wav2vec2_ctc/export.py --epoch 30 --avg 5 --exp-dir wav2vec2_ctc/exp_100h --subnet d8-w1.0-b4
"""

from allinone.deploy.export_cli import export_main

if __name__ == "__main__":
    export_main(__doc__)
