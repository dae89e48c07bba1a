#!/usr/bin/env python3
"""Does recomputing a subnet's BatchNorm statistics change its WER? (allinone.nn.bn_calibration)

Usage (from egs/synth_digits/ASR):

  ../../../local/check_bn_calibration.py \
    --exp-dir conformer_transducer/exp_all_in_one_k1w300_h8low --epoch 20 \
    --subnets d3-w1.0-b4,d6-w1.0-b2 --batches 50 --decoding-method greedy_search

For each subnet: decode the test sets with the statistics the checkpoint holds
(``--use-averaged-model``, as decode.py scores it), recompute the statistics from
``--batches`` clean training batches (shuffled, duration-bucketed, ``--max-duration``
seconds each as in training), decode again, and print per test set the two WERs with their
error types and the MAPSSWE p-value, plus how far each layer's statistics moved (mean shift
in units of the stored standard deviation, ratio of calibrated to stored variance).
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root

import torch  # noqa: E402

from allinone.data.datamodule import AsrDataModule, load_split, shuffled_batches  # noqa: E402
from allinone.data.tokenizer import BpeTokenizer  # noqa: E402
from allinone.decoding.runner import TRANSDUCER_METHODS, decode_dataset, load_for_decoding  # noqa: E402
from allinone.nn.bn_calibration import calibrate_batchnorm  # noqa: E402
from allinone.nn.conformer import SubnetBatchNorm  # noqa: E402
from allinone.subnet import select_subnets  # noqa: E402
from allinone.utils.scoring import compute_wer  # noqa: E402
from allinone.utils.significance import mapsswe  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp-dir", type=Path, required=True)
    p.add_argument("--epoch", type=int, required=True)
    p.add_argument("--avg", type=int, default=1)
    p.add_argument("--subnets", default="all")
    p.add_argument("--batches", type=int, default=50, help="training batches to calibrate on")
    p.add_argument("--max-duration", type=float, default=60.0, help="seconds per calibration batch")
    p.add_argument("--seed", type=int, default=0, help="shuffle of the calibration batches")
    p.add_argument("--decoding-method", default="greedy_search", choices=TRANSDUCER_METHODS)
    p.add_argument("--manifest-dir", type=Path, default=Path("data/fbank"))
    p.add_argument("--cuts-prefix", default="synth_digits_cuts")
    p.add_argument("--test-sets", default="test-seen,test-unseen")
    p.add_argument("--bpe-model", type=Path, default=Path("data/lang_bpe_64/bpe.model"))
    args = p.parse_args()
    torch.set_num_threads(1)

    train_cuts = load_split(args.manifest_dir, args.cuts_prefix, "train")
    tests = {
        name: load_split(args.manifest_dir, args.cuts_prefix, name) for name in args.test_sets.split(",")
    }
    batches = list(shuffled_batches(train_cuts, args.max_duration, args.batches, args.seed))  # read once
    tokenizer = BpeTokenizer(args.bpe_model)
    loader_dm = AsrDataModule(max_duration=300, num_workers=0)
    print(f"# {args.exp_dir} epoch {args.epoch}, {args.decoding_method}, {args.batches} calibration batches")
    print("| subnet | test set | WER stored | WER calibrated | ins/del/sub stored | calibrated | p |")
    print("|---|---|---|---|---|---|---|")
    shifts = []
    # Calibrating one subnet rewrites only its own statistics slots, so one model serves all.
    model, trained = load_for_decoding(args.exp_dir, args.epoch, args.avg, True)
    norms = [m for m in model.modules() if isinstance(m, SubnetBatchNorm)]

    def decode_all(subnet):
        loaders = {name: loader_dm.eval_dataloader(c) for name, c in tests.items()}
        return {
            name: decode_dataset(model, ld, tokenizer, args.decoding_method, subnet=subnet)[0]
            for name, ld in loaders.items()
        }

    for s in select_subnets(args.subnets.split(","), trained):
        stored = decode_all(s)
        before = [(m.running_mean.clone(), m.running_var.clone()) for m in norms]
        calibrate_batchnorm(model, s, batches)
        calibrated = decode_all(s)
        for name in tests:
            a, b = compute_wer(stored[name]), compute_wer(calibrated[name])
            test = mapsswe(stored[name], calibrated[name])
            print(
                f"| {s.name} | {name} | {a.wer:.2f} | {b.wer:.2f} | {a.ins}/{a.dels}/{a.subs} "
                f"| {b.ins}/{b.dels}/{b.subs} | {test.p_value:.3f} |"
            )
        slot = model.encoder.norm_slot(s)
        for layer, (m, (mean, var)) in enumerate(zip(norms, before)):
            if not torch.equal(m.running_mean[slot], mean[slot]):
                shift = ((m.running_mean[slot] - mean[slot]).abs() / var[slot].sqrt()).mean().item()
                ratio = (m.running_var[slot] / var[slot]).mean().item()
                shifts.append(f"{s.name} layer {layer}: mean shift {shift:.3f} std, variance x{ratio:.3f}")
    print("\nStatistics moved by calibration (averaged over channels):")
    print("\n".join(f"- {line}" for line in shifts))


if __name__ == "__main__":
    main()
