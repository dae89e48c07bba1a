#!/usr/bin/env python3
"""Decode the synthetic-digits test sets with a trained Conformer transducer.

Usage (from egs/synth_digits/ASR):

  ./conformer_transducer/decode.py \
    --epoch 4 \
    --avg 2 \
    --use-averaged-model true \
    --exp-dir conformer_transducer/exp \
    --decoding-method modified_beam_search \
    --beam-size 4

CTC head (the model must be trained with --use-ctc true), through kaldi-decoder with the
graphs of prepare.sh stage 5 (H: ctc-decoding, HL: hl, HLG: 1best):

  ./conformer_transducer/decode.py --epoch 10 --avg 1 --exp-dir conformer_transducer/exp \
    --decoding-method 1best --lang-dir data/lang_bpe_64 --ngram-lm-scale 1.0

Any subnets of a nested (all-in-one) checkpoint, by name or all of them:

  ./conformer_transducer/decode.py --epoch 10 --avg 1 --use-averaged-model true \
    --exp-dir conformer_transducer/exp_all_in_one --subnets all

The same with each subnet's BatchNorm statistics first recomputed on 50 clean training
batches (results in <exp-dir>/modified_beam_search-bn-calibrated/):

  ./conformer_transducer/decode.py --epoch 10 --avg 1 --exp-dir conformer_transducer/exp_all_in_one \
    --subnets all --bn-calibration-batches 50

A packed low-bit model file written by export.py (its size is the stored size; results
carry the source subnet's name and the suffix "packed"):

  ./conformer_transducer/decode.py --exp-dir conformer_transducer/exp_quant/lsq-b4 \
    --packed-model conformer_transducer/exp_quant/lsq-b4/d6-w1.0-b4.aio

Writes recogs-*, errs-* and wer-summary-* per test set and subnet (the subnet name
leads the suffix) to <exp-dir>/<decoding-method>/, plus subnet-summary-*.md/.json: per
subnet the parameters used, stored bytes, compression ratio against the float full
model, WER per test set and the real-time factor (--num-threads, default one thread).
"""

import argparse
from pathlib import Path

from allinone.decoding.ctc_search import CTC_BACKENDS
from allinone.decoding.recipe import TEST_SETS, DecodeOptions, decode_recipe
from allinone.decoding.runner import DECODING_METHODS
from allinone.decoding.subnet_report import format_subnet_table
from allinone.training.cli import str2bool


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epoch", type=int, help="decode epoch-<epoch>.pt (required without --packed-model)")
    p.add_argument("--avg", type=int, default=1, help="number of epochs to average, ending at --epoch")
    p.add_argument(
        "--use-averaged-model",
        type=str2bool,
        default=True,
        help="average the running-average weights over the steps of those epochs",
    )
    p.add_argument("--exp-dir", type=Path, default=Path("conformer_transducer/exp"))
    p.add_argument("--bpe-model", type=Path, default=Path("data/lang_bpe_64/bpe.model"))
    p.add_argument("--manifest-dir", type=Path, default=Path("data/fbank"))
    p.add_argument("--cuts-prefix", default="synth_digits_cuts")
    p.add_argument("--test-sets", default=",".join(TEST_SETS), help="comma-separated split names")
    p.add_argument("--decoding-method", default="modified_beam_search", choices=DECODING_METHODS)
    p.add_argument("--beam-size", type=int, default=4, help="modified_beam_search: hypotheses kept")
    p.add_argument(
        "--blank-penalty",
        type=float,
        default=0.0,
        help="transducer methods: subtracted from the blank logit (> 0 trades deletions for "
        "insertions); a non-zero value ends the result files' suffix (-blank-penalty-P)",
    )
    p.add_argument("--lang-dir", type=Path, default=Path("data/lang_bpe_64"), help="graphs for CTC methods")
    p.add_argument("--search-beam", type=float, default=20.0, help="graph search beam (CTC methods)")
    p.add_argument("--max-active", type=int, default=7000, help="graph search: most active states per frame")
    p.add_argument("--ngram-lm-scale", type=float, default=1.0, help="1best: weight of the n-gram LM")
    p.add_argument(
        "--ctc-backend",
        default="auto",
        choices=CTC_BACKENDS,
        help="graph search: kaldi (kaldifst + kaldi-decoder), k2, or auto (k2 when it imports)",
    )
    p.add_argument("--max-duration", type=float, default=300.0)
    p.add_argument(
        "--subnets",
        default="all",
        help="'all' (every subnet the checkpoint was trained with) or comma-separated names",
    )
    p.add_argument(
        "--packed-model",
        type=Path,
        help="decode this export.py file instead of a checkpoint (--epoch/--avg/--subnets unused)",
    )
    p.add_argument(
        "--bn-calibration-batches",
        type=int,
        default=0,
        help="recompute each subnet's BatchNorm statistics on this many clean training batches "
        "before decoding it (allinone.nn.bn_calibration; 0 = keep the checkpoint's); results go "
        "to <exp-dir>/<decoding-method>-bn-calibrated/",
    )
    p.add_argument("--bn-calibration-max-duration", type=float, default=60.0, help="seconds per batch")
    p.add_argument("--bn-calibration-seed", type=int, default=0, help="shuffle of the calibration batches")
    p.add_argument(
        "--num-threads",
        type=int,
        default=1,
        help="torch threads; 1 makes the reported real-time factor a one-core figure",
    )
    return p


def main() -> None:
    parser = get_parser()
    try:
        options = DecodeOptions.from_args(parser.parse_args())
    except ValueError as e:
        parser.error(str(e))
    print(format_subnet_table(decode_recipe(options)))


if __name__ == "__main__":
    main()
