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
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))  # the repository root

import torch  # noqa: E402

from allinone.data.datamodule import AsrDataModule, load_split, shuffled_batches  # noqa: E402
from allinone.data.tokenizer import BpeTokenizer  # noqa: E402
from allinone.decoding.ctc_search import CTC_BACKENDS, CTC_METHODS, CtcSearcher  # noqa: E402
from allinone.decoding.runner import DECODING_METHODS, decode_dataset, load_for_decoding  # noqa: E402
from allinone.decoding.subnet_report import (  # noqa: E402
    SubnetRow,
    format_subnet_table,
    subnet_row,
    write_subnet_summary,
)
from allinone.nn.bn_calibration import calibrate_batchnorm  # noqa: E402
from allinone.quant.export import load_packed_model  # noqa: E402
from allinone.subnet import select_subnets  # noqa: E402
from allinone.training.cli import str2bool  # noqa: E402
from allinone.utils.log import setup_logger  # noqa: E402
from allinone.utils.scoring import save_results  # noqa: E402

TEST_SETS = ("test-seen", "test-unseen")


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
    args = parser.parse_args()
    if args.epoch is None and args.packed_model is None:
        parser.error("--epoch is required (or give --packed-model)")
    if args.blank_penalty and args.decoding_method in CTC_METHODS:
        parser.error(f"--blank-penalty applies to transducer search, not to {args.decoding_method}")
    if args.bn_calibration_batches < 0:
        parser.error("--bn-calibration-batches must be >= 0")
    if args.bn_calibration_batches and args.packed_model:
        parser.error("--bn-calibration-batches recomputes a checkpoint's statistics, not a packed file's")
    calibrated = "-bn-calibrated" if args.bn_calibration_batches else ""
    res_dir = args.exp_dir / f"{args.decoding_method}{calibrated}"
    setup_logger(res_dir / "log-decode")
    torch.set_num_threads(args.num_threads)
    tokenizer = BpeTokenizer(args.bpe_model)
    packed = None
    if args.packed_model:
        model, run, packed = load_packed_model(args.packed_model)
        subnets, suffix = [run], "packed"
    else:
        model, trained = load_for_decoding(args.exp_dir, args.epoch, args.avg, args.use_averaged_model)
        subnets = select_subnets(args.subnets.split(","), trained)
        suffix = f"epoch-{args.epoch}-avg-{args.avg}"
        suffix += "-use-averaged-model" if args.use_averaged_model else ""
    if model.config.vocab_size != tokenizer.vocab_size:
        raise ValueError(
            f"{args.bpe_model} has {tokenizer.vocab_size} tokens but the model was trained "
            f"with {model.config.vocab_size}"
        )
    ctc_searcher = None
    if args.decoding_method in CTC_METHODS:
        if not model.config.use_ctc:
            raise ValueError(f"{args.exp_dir}: the model has no CTC head (trained without --use-ctc true)")
        # Built before any decoding: a missing or mismatched lang dir fails here.
        ctc_searcher = CtcSearcher(
            args.decoding_method,
            tokenizer,
            model.config.vocab_size,
            args.lang_dir,
            args.search_beam,
            args.max_active,
            args.ngram_lm_scale,
            model.config.blank_id,
            args.ctc_backend,
        )
    key = {
        "greedy_search": "greedy_search",
        "modified_beam_search": f"modified_beam_search_beam_{args.beam_size}",
        "ctc-greedy-search": "ctc-greedy-search",
        "ctc-decoding": f"ctc-decoding_beam_{args.search_beam:g}",
        "hl": f"hl_beam_{args.search_beam:g}",
        "1best": f"1best_beam_{args.search_beam:g}_lm_scale_{args.ngram_lm_scale:g}",
    }[args.decoding_method]
    if args.blank_penalty:
        # In the suffix (as icefall does), so every file of the run is named apart from the
        # plain decoding's and the comparison scripts, which match the plain suffix, skip it.
        suffix += f"-blank-penalty-{args.blank_penalty:g}"
    dm = AsrDataModule(max_duration=args.max_duration, num_workers=0)
    test_cuts = {
        name: load_split(args.manifest_dir, args.cuts_prefix, name) for name in args.test_sets.split(",")
    }
    calibration_batches = []
    if args.bn_calibration_batches:
        # Read once, the same for every subnet and model, so calibrated systems stay comparable.
        train_cuts = load_split(args.manifest_dir, args.cuts_prefix, "train")
        calibration_batches = list(
            shuffled_batches(
                train_cuts,
                args.bn_calibration_max_duration,
                args.bn_calibration_batches,
                args.bn_calibration_seed,
            )
        )
        if not calibration_batches:
            raise ValueError(
                f"the {args.cuts_prefix}_train cuts in {args.manifest_dir} give no training batch of "
                f"{args.bn_calibration_max_duration:g} s to recompute BatchNorm statistics on: lower "
                "--bn-calibration-max-duration"
            )
    rows = []
    for subnet in subnets:
        if calibration_batches:
            info = calibrate_batchnorm(model, subnet, calibration_batches)
            logging.info(f"{subnet.name}: BatchNorm statistics recomputed on {info['batches']} batches")
        if packed is None:
            row = subnet_row(model, subnet)
        else:  # what the file holds: its own size, named after the subnet it came from
            size = args.packed_model.stat().st_size
            ratio = packed["float_model_bytes"] / size
            row = SubnetRow(packed["source_subnet"], packed["params"], size, ratio)
        name = row.subnet
        row.threads = args.num_threads
        for test_set, cuts in test_cuts.items():
            results, stats = decode_dataset(
                model,
                dm.eval_dataloader(cuts),
                tokenizer,
                args.decoding_method,
                args.beam_size,
                subnet=subnet,
                desc=f"{name} {test_set}",
                ctc_searcher=ctc_searcher,
                blank_penalty=args.blank_penalty,
            )
            wers = save_results(res_dir, test_set, {key: results}, f"{name}-{suffix}")
            row.add_test_set(test_set, wers[key], stats.decode_seconds, stats.audio_seconds)
            logging.info(f"{name} {test_set}: WER {wers[key]:.2f}% over {len(results)} utterances")
        rows.append(row)
    grid = [s.name for s in subnets] if packed is not None else [s.name for s in trained]
    write_subnet_summary(res_dir, f"{key}-{suffix}", rows, order=grid)
    print(format_subnet_table(rows))


if __name__ == "__main__":
    main()
