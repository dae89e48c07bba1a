#!/usr/bin/env python3
"""Train a Conformer pruned-transducer on the synthetic connected-digits corpus.

Usage (from egs/synth_digits/ASR, after ./prepare.sh):

  ./conformer_transducer/train.py \
    --world-size 1 \
    --num-epochs 4 \
    --start-epoch 1 \
    --exp-dir conformer_transducer/exp \
    --max-duration 120 \
    --bpe-model data/lang_bpe_64/bpe.model

Resume after an interruption at the next unseen batch of checkpoint-600.pt:

  ./conformer_transducer/train.py --start-batch 600 --exp-dir conformer_transducer/exp ...

Outputs in --exp-dir: epoch-N.pt, checkpoint-N.pt, best-valid-loss.pt, log/log-train-*,
tensorboard/.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))  # the repository root

from allinone.training.cli import add_train_arguments, config_from_args  # noqa: E402
from allinone.training.trainer import train  # noqa: E402

RECIPE_DEFAULTS = {
    "exp_dir": Path("conformer_transducer/exp"),
    "bpe_model": Path("data/lang_bpe_64/bpe.model"),
    "manifest_dir": Path("data/fbank"),
    "train_cuts": "synth_digits_cuts_train.jsonl.gz",
    "valid_cuts": "synth_digits_cuts_dev.jsonl.gz",
    "model": {"d_model": 144, "num_layers": 6, "num_heads": 4, "ffn_dim": 576, "kernel_size": 15},
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_train_arguments(parser, RECIPE_DEFAULTS)
    train(config_from_args(parser.parse_args()))


if __name__ == "__main__":
    main()
