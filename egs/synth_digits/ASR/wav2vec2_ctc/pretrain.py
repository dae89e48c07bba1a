#!/usr/bin/env python3
r"""Pretrain a small wav2vec 2.0 on the synthetic digits' training audio (no transcripts).

Usage (from egs/synth_digits/ASR):

  ./wav2vec2_ctc/pretrain.py --exp-dir wav2vec2_ctc/exp_pretrain --num-steps 4000 --max-minutes 60

Writes wav2vec2_ctc/exp_pretrain/hub/ (config.json + model.safetensors, the Hub's layout),
pretrain-summary.json (parameters, hours of audio seen, steps, final contrastive loss) and a
resumable pretrain-checkpoint.pt. Fine-tune it with
./wav2vec2_ctc/train.py --pretrained-dir wav2vec2_ctc/exp_pretrain/hub.
"""

from allinone.training.ssl_pretrain import pretrain_main

PRETRAIN_DEFAULTS = {}

if __name__ == "__main__":
    pretrain_main(PRETRAIN_DEFAULTS, __doc__)
