#!/usr/bin/env python3
"""Measure training-step throughput and the pruned-RNN-T loss share of the step time.

Usage (from egs/synth_digits/ASR, after ./prepare.sh):

  ./conformer_transducer/benchmark_step.py --num-batches 20 --max-duration 120

Runs real training batches of the train set through the default model (weights
updated with AdamW as in training, data loading excluded) and prints a markdown table
for RESULTS.md.
"""

import argparse
from pathlib import Path

import torch

from allinone.data.batch import unpack_batch
from allinone.data.datamodule import AsrDataModule, filter_cuts, load_cuts
from allinone.data.tokenizer import BpeTokenizer
from allinone.nn.build import build_model
from allinone.nn.model import ModelConfig
from allinone.training.cli import recipe_defaults
from allinone.training.profile import profile_steps

RECIPE_DEFAULTS = recipe_defaults(Path(__file__).resolve().parent / "train.py")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-batches", type=int, default=20)
    p.add_argument("--warmup-batches", type=int, default=3)
    p.add_argument("--max-duration", type=float, default=120.0)
    p.add_argument("--bpe-model", type=Path, default=RECIPE_DEFAULTS["bpe_model"])
    p.add_argument(
        "--cuts", type=Path, default=RECIPE_DEFAULTS["manifest_dir"] / RECIPE_DEFAULTS["train_cuts"]
    )
    p.add_argument("--num-threads", type=int, default=2)
    args = p.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(args.num_threads)
    tok = BpeTokenizer(args.bpe_model)
    cuts, _ = filter_cuts(load_cuts(args.cuts), tok)
    dm = AsrDataModule(max_duration=args.max_duration, num_workers=0, seed=0)
    loader = dm.train_dataloader(dm.train_sampler(cuts), epoch=1)
    batches = []
    for batch in loader:
        b = unpack_batch(batch)
        batches.append((b.features, b.feature_lens, tok.encode_batch(b.texts, b.cut_ids)))
        if len(batches) == args.warmup_batches + args.num_batches:
            break
    model = build_model(ModelConfig(vocab_size=tok.vocab_size, **RECIPE_DEFAULTS["model"])).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    profile_steps(model, opt, batches[: args.warmup_batches])
    times = profile_steps(model, opt, batches[args.warmup_batches :])

    step = times.parts["step"]
    params = sum(p.numel() for p in model.parameters())
    print(
        f"model: {params / 1e6:.2f}M parameters, {args.num_threads} threads, "
        f"{args.num_batches} batches of max {args.max_duration:.0f} s, {times.audio_seconds:.0f} s audio"
    )
    print("| measure | value |\n|---|---|")
    throughput = times.audio_seconds / step
    print(f"| training step throughput (fwd+bwd+AdamW, no data loading) | {throughput:.1f} s audio/s |")
    print(f"| mean step time | {step / args.num_batches:.3f} s |")
    rows = {
        "simple_loss": "simple loss + prune ranges (fwd+bwd)",
        "pruned_loss": "pruned loss incl. joiner (fwd+bwd)",
        "loss_subgraph": "decoder + joiner + both losses (fwd+bwd)",
    }
    for key, label in rows.items():
        print(f"| {label} share of step | {100 * times.parts[key] / step:.1f}% |")


if __name__ == "__main__":
    main()
