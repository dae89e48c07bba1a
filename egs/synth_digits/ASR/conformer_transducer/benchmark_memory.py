#!/usr/bin/env python3
r"""Peak memory of training steps: one subnet, or several subnets of a nested model per step.

Usage (from egs/synth_digits/ASR, after ./prepare.sh):

  # the float full model alone
  ./conformer_transducer/benchmark_memory.py
  # one all-in-one step as run_all_in_one.sh trains it
  ./conformer_transducer/benchmark_memory.py --subnets default --subnet-policy sandwich \
    --sandwich-k 1 --distill true
  # the plain 12-layer model, and a 6-block seed unfolded to 12 as run_unfolding.sh trains it
  ./conformer_transducer/benchmark_memory.py --model num_layers=12
  ./conformer_transducer/benchmark_memory.py --subnets unfold --subnet-policy sandwich \
    --sandwich-k 1 --distill true

Runs --num-batches real training batches (forward, backward, AdamW; the largest batches
of the train set, so the peak is the worst case at --max-duration) and prints one markdown
row: resident memory before the steps, the peak during them, and the increase;
--json-out appends the same numbers as one JSON line.
"""

import argparse
import json
from pathlib import Path

import torch

from allinone.data.datamodule import filter_cuts, load_cuts
from allinone.data.tokenizer import BpeTokenizer
from allinone.nn.build import build_model
from allinone.training.cli import recipe_defaults
from allinone.training.config import TrainConfig, parse_model_overrides
from allinone.training.nested import NestedLoss, NestedPlan, combine_subnet_losses
from allinone.training.step_losses import LossAssembler
from allinone.utils.memory import measure_peak
from allinone.utils.options import str2bool

RECIPE_DEFAULTS = recipe_defaults(Path(__file__).resolve().parent / "train.py")


def largest_batches(cuts, tok: BpeTokenizer, max_duration: float, num_batches: int):
    """The longest cuts packed into ``num_batches`` batches of at most ``max_duration`` seconds."""
    from lhotse import CutSet
    from lhotse.dataset.collation import collate_features

    longest = sorted(cuts, key=lambda c: -c.duration)
    batches, i = [], 0
    for _ in range(num_batches):
        batch, total = [], 0.0
        while i < len(longest) and total + longest[i].duration <= max_duration:
            batch.append(longest[i])
            total += longest[i].duration
            i += 1
        feats, lens = collate_features(CutSet.from_cuts(batch))
        labels = tok.encode_batch([c.supervisions[0].text for c in batch], [c.id for c in batch])
        batches.append((feats, lens.long(), labels))
    return batches


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--subnets", default="", help="as train.py --subnets (empty: the full float model)")
    p.add_argument("--subnet-policy", default="auto")
    p.add_argument("--sandwich-k", type=int, default=2)
    p.add_argument("--distill", type=str2bool, default=False)
    p.add_argument("--num-batches", type=int, default=4)
    p.add_argument("--max-duration", type=float, default=RECIPE_DEFAULTS["max_duration"])
    p.add_argument("--bpe-model", type=Path, default=RECIPE_DEFAULTS["bpe_model"])
    p.add_argument(
        "--cuts", type=Path, default=RECIPE_DEFAULTS["manifest_dir"] / RECIPE_DEFAULTS["train_cuts"]
    )
    p.add_argument("--unfold-relax", type=str2bool, default=False)
    p.add_argument(
        "--model",
        nargs="*",
        action="extend",
        default=[f"{k}={v}" for k, v in RECIPE_DEFAULTS["model"].items()],
        help="key=value model options overriding the recipe's (e.g. num_layers=12)",
    )
    p.add_argument("--json-out", type=Path, help="append the measurement as one JSON line here")
    p.add_argument("--num-threads", type=int, default=1)
    args = p.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(args.num_threads)
    tok = BpeTokenizer(args.bpe_model)
    cuts, _ = filter_cuts(load_cuts(args.cuts), tok)
    batches = largest_batches(cuts, tok, args.max_duration, args.num_batches)
    # The recipe's training config, so the model and the loss weights are train.py's.
    cfg = TrainConfig.from_flat(
        model=parse_model_overrides(args.model),
        use_ctc=RECIPE_DEFAULTS.get("use_ctc", False),
        subnets=args.subnets,
        unfold_relax=args.unfold_relax,
    )
    subnets = list(cfg.grid)
    num_layers = cfg.model.num_layers
    model_cfg = cfg.model_for(tok.vocab_size, tok.blank_id)
    model = build_model(model_cfg, subnets, unfold_relax=args.unfold_relax).train()
    plan = NestedPlan(tuple(subnets), args.subnet_policy, args.sandwich_k, distill=args.distill)
    module = NestedLoss(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    heads = LossAssembler(cfg, plan, tok, teacher=None).head_weights(None)  # after warm-up
    step_subnets = [plan.select(step, seed=0) for step in range(len(batches))]

    def steps():
        for (feats, lens, labels), run in zip(batches, step_subnets):
            per = module(feats, lens, labels, run, distill=plan.distill)
            opt.zero_grad()
            combine_subnet_losses(per, heads, plan, plan.teacher.name).sum().backward()
            opt.step()

    m = measure_peak(steps)
    audio = max(float(lens.sum()) * 0.01 for _, lens, _ in batches)
    runs = ", ".join(str(len(r)) for r in step_subnets)
    if args.json_out:
        record = {
            "subnets": args.subnets or subnets[0].name,
            "num_layers": num_layers,
            "policy": plan.effective_policy(),
            "subnets_per_step": [len(r) for r in step_subnets],
            "distill": plan.distill,
            "params": sum(p.numel() for p in model.parameters()),
            **m,
        }
        with open(args.json_out, "a") as f:
            f.write(json.dumps(record) + "\n")
    print(
        f"| {args.subnets or subnets[0].name} | {plan.effective_policy()} | {runs} | {plan.distill} | "
        f"{audio:.0f} s | {m['rss_before_mb']:.0f} | {m['peak_mb']:.0f} | {m['step_peak_increase_mb']:.0f} |"
    )


if __name__ == "__main__":
    main()
