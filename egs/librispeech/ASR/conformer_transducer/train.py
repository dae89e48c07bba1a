#!/usr/bin/env python3
r"""Train a Conformer pruned-transducer (+ CTC head) on LibriSpeech.

Usage (from egs/librispeech/ASR, after ./prepare.sh):

  # train-clean-100 on one GPU (Conformer-S)
  ./conformer_transducer/train.py --device cuda --use-bf16 true --num-epochs 30 \
    --exp-dir conformer_transducer/exp_100h

  # the 960 h set with the all-in-one paper's Conformer on 8 GPUs of one machine
  torchrun --standalone --nproc-per-node 8 ./conformer_transducer/train.py --use-fp16 true \
    --train-cuts librispeech_cuts_train-960.jsonl.gz --num-epochs 30 --exp-dir conformer_transducer/exp_960h \
    --model d_model=256 num_layers=12 num_heads=4 ffn_dim=2048 kernel_size=31

  # the same on two machines (run on both, --node-rank 0 and 1)
  torchrun --nnodes 2 --node-rank 0 --nproc-per-node 8 --rdzv-backend c10d \
    --rdzv-endpoint HOST0:29500 --rdzv-id libri960 ./conformer_transducer/train.py ...

Every flag of the synthetic recipe's train.py applies (--subnets for all-in-one training,
--model quantizer=gq, --mp-target-bits, ...); --help lists them.
"""

from pathlib import Path

from allinone.nn.presets import model_preset
from allinone.training.cli import train_main

RECIPE_DEFAULTS = {
    "exp_dir": Path("conformer_transducer/exp"),
    "bpe_model": Path("data/lang_bpe_500/bpe.model"),
    "manifest_dir": Path("data/fbank"),
    "train_cuts": "librispeech_cuts_train-clean-100.jsonl.gz",
    "valid_cuts": "librispeech_cuts_dev-clean.jsonl.gz",
    "max_duration": 600.0,
    "num_buckets": 30,
    "num_workers": 2,
    # A lazily read corpus cannot be sorted in memory: no SortaGrad epoch.
    "sortagrad_epochs": 0,
    "use_ctc": True,
    "lr_epochs": 3.5,
    "lr_batches": 5000.0,
    "warmup_batches": 500,
    "model": model_preset("conformer-s"),
}

if __name__ == "__main__":
    train_main(RECIPE_DEFAULTS, __doc__)
