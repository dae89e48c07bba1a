#!/usr/bin/env python3
r"""Fine-tune a wav2vec 2.0 (or HuBERT) checkpoint with CTC on the synthetic digits, any subnet grid.

Usage (from egs/synth_digits/ASR, after ./prepare.sh and ./wav2vec2_ctc/pretrain.py):

  ./wav2vec2_ctc/train.py --num-epochs 10 --exp-dir wav2vec2_ctc/exp \
    --pretrained-dir wav2vec2_ctc/exp_pretrain/hub

  # a downloaded checkpoint in the Hub's layout (e.g. wav2vec2-base, or --model encoder=hubert
  # for hubert-large), and the all-in-one grid over its layers, FFN widths and bits
  ./wav2vec2_ctc/train.py --pretrained-dir /path/to/wav2vec2-base --subnets d12-w1.0-b32,d8-w0.5-b4

The model reads the raw waveform; its convolutional feature encoder stays frozen, time
masking and LayerDrop follow the checkpoint's config, the CTC head over the recipe's BPE
tokens starts fresh. The learning rate warms up linearly, then decays (Eden, as every
recipe here). Outputs as train.py of conformer_transducer.
"""

from pathlib import Path

from allinone.training.cli import train_main

RECIPE_DEFAULTS = {
    "exp_dir": Path("wav2vec2_ctc/exp"),
    "bpe_model": Path("data/lang_bpe_64/bpe.model"),
    "manifest_dir": Path("data/fbank"),
    "train_cuts": "synth_digits_cuts_train.jsonl.gz",
    "valid_cuts": "synth_digits_cuts_dev.jsonl.gz",
    "pretrained_dir": "wav2vec2_ctc/exp_pretrain/hub",
    "use_transducer": False,
    "use_ctc": True,
    "base_lr": 3e-4,
    "warmup_batches": 200,
    "max_duration": 60.0,
    "model": {"encoder": "wav2vec2"},
}


if __name__ == "__main__":
    train_main(RECIPE_DEFAULTS, __doc__)
