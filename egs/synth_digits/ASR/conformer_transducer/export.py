#!/usr/bin/env python3
r"""Export one subnet of a trained checkpoint as a packed low-bit model file.

Usage (from egs/synth_digits/ASR):

  ./conformer_transducer/export.py --epoch 2 --avg 1 --use-averaged-model true \
    --exp-dir conformer_transducer/exp_quant/lsq-b4 --subnet d6-w1.0-b4

Writes <exp-dir>/<subnet>.aio (or --out): packed b-bit integer codes and their steps
(uniform quantizers) or b-bit indices and a codebook (GQ), float32 for everything else
the subnet runs, and the standalone model config. Prints its size against the accounted
stored size, then reloads it and checks that its encoder outputs equal the fake-quantized
subnet's on random input; the numbers (and the average weight bit-width, and the per-layer
bit map of a mixed-precision subnet) also go to <out>.json. Decode it with
decode.py --packed-model.
"""

from allinone.deploy.export_cli import export_main

if __name__ == "__main__":
    export_main(__doc__)
