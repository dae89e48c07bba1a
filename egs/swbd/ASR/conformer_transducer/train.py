#!/usr/bin/env python3
r"""Train a Conformer pruned-transducer (+ CTC head) on Switchboard-1 (about 300 h).

Usage (from egs/swbd/ASR, after ./prepare.sh):

  # one GPU, the all-in-one paper's Switchboard Conformer (12 x 256, FFN 2048, kernel 31)
  ./conformer_transducer/train.py --device cuda --use-bf16 true --num-epochs 30 \
    --exp-dir conformer_transducer/exp

  # 8 GPUs of one machine (--use-fp16 true: float16 with a gradient scaler)
  torchrun --standalone --nproc-per-node 8 ./conformer_transducer/train.py --use-fp16 true \
    --num-epochs 30 --exp-dir conformer_transducer/exp

  # two machines of 8 GPUs each (run on both, --node-rank 0 and 1)
  torchrun --nnodes 2 --node-rank 0 --nproc-per-node 8 --rdzv-backend c10d \
    --rdzv-endpoint HOST0:29500 --rdzv-id swbd ./conformer_transducer/train.py --use-fp16 true ...

  # the all-in-one nested model over the paper's grid, with MUSAN noise (prepare.sh found it)
  ./conformer_transducer/train.py --device cuda --use-bf16 true --subnets default --distill true \
    --enable-musan true --exp-dir conformer_transducer/exp_all_in_one

Every flag of the synthetic recipe's train.py applies (--subnets, --model quantizer=gq,
--mp-target-bits, ...); --help lists them.
"""

from pathlib import Path

from allinone.nn.presets import model_preset
from allinone.training.cli import train_main

RECIPE_DEFAULTS = {
    "exp_dir": Path("conformer_transducer/exp"),
    "bpe_model": Path("data/lang_bpe_500/bpe.model"),
    "manifest_dir": Path("data/fbank"),
    "train_cuts": "swbd_cuts_train.jsonl.gz",
    "valid_cuts": "swbd_cuts_dev.jsonl.gz",
    "max_duration": 600.0,
    "num_buckets": 30,
    "num_workers": 2,
    # A lazily read corpus cannot be sorted in memory: no SortaGrad epoch.
    "sortagrad_epochs": 0,
    "use_ctc": True,
    "lr_epochs": 3.5,
    "lr_batches": 5000.0,
    "warmup_batches": 500,
    "model": model_preset("conformer-aio-paper"),
}

if __name__ == "__main__":
    train_main(RECIPE_DEFAULTS, __doc__)
