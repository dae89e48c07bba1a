#!/usr/bin/env python3
r"""Train a Conformer pruned-transducer on the synthetic connected-digits corpus.

Usage (from egs/synth_digits/ASR, after ./prepare.sh):

  ./conformer_transducer/train.py \
    --world-size 1 \
    --num-epochs 10 \
    --exp-dir conformer_transducer/exp \
    --max-duration 60 \
    --bpe-model data/lang_bpe_64/bpe.model

Resume after an interruption at the next unseen batch of checkpoint-600.pt:

  ./conformer_transducer/train.py --start-batch 600 --exp-dir conformer_transducer/exp ...

(`python3 -m allinone.training.resume conformer_transducer/exp` prints the flags that
continue a run; a fresh start into a directory that holds checkpoints is refused.)

Outputs in --exp-dir: epoch-N.pt, checkpoint-N.pt, best-valid-loss.pt, log/log-train-*,
tensorboard/.
"""

from pathlib import Path

from allinone.nn.presets import model_preset
from allinone.training.cli import train_main

RECIPE_DEFAULTS = {
    "exp_dir": Path("conformer_transducer/exp"),
    "bpe_model": Path("data/lang_bpe_64/bpe.model"),
    "manifest_dir": Path("data/fbank"),
    "train_cuts": "synth_digits_cuts_train.jsonl.gz",
    "valid_cuts": "synth_digits_cuts_dev.jsonl.gz",
    # Measured on this corpus (RESULTS.md): with dropout 0.1 or a peak learning rate of 3e-3
    # the Conformer stays on the blank-only plateau for 700+ steps; with dropout 0, a peak
    # of 1e-3, 60 s batches and a CTC auxiliary head it leaves it after about 500 steps.
    "base_lr": 1e-3,
    "warmup_batches": 100,
    "max_duration": 60.0,
    "use_ctc": True,
    "model": model_preset("conformer-digits"),
}


if __name__ == "__main__":
    train_main(RECIPE_DEFAULTS, __doc__)
