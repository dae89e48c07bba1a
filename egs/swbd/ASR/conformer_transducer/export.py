#!/usr/bin/env python3
r"""Export one subnet of a Switchboard checkpoint as a packed low-bit model file.

Usage (from egs/swbd/ASR):

  ./conformer_transducer/export.py --epoch 30 --avg 10 --exp-dir conformer_transducer/exp_all_in_one \
    --subnet d12-w1.0-b4
"""

from allinone.deploy.export_cli import export_main

if __name__ == "__main__":
    export_main(__doc__)
