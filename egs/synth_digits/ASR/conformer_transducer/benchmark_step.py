#!/usr/bin/env python3
r"""Measure training-step throughput, peak memory and the pruned-RNN-T loss share of a step.

Usage (from egs/synth_digits/ASR, after ./prepare.sh):

  ./conformer_transducer/benchmark_step.py --num-batches 20 --max-duration 120

The paper-size Conformer on LibriSpeech-like batches (random features and labels, so no
corpus is needed: 15 s utterances, 3 BPE-500 tokens per second), on a GPU in bfloat16:

  ./conformer_transducer/benchmark_step.py --model-preset conformer-aio-paper \
    --random-batches true --max-duration 600 --device cuda --dtype bf16

Runs training steps (forward, backward, AdamW; data loading excluded) and prints a
markdown table for RESULTS.md: seconds of audio per second, mean step time, peak memory
of the steps (CUDA: allocated; CPU: resident-set high-water mark) and the loss's share.
"""

import argparse
from pathlib import Path

import torch

from allinone.data.batch import unpack_batch
from allinone.data.datamodule import AsrDataModule, filter_cuts, load_cuts
from allinone.data.tokenizer import BpeTokenizer
from allinone.nn.build import build_model
from allinone.nn.model import ModelConfig
from allinone.nn.presets import MODEL_PRESETS, model_preset
from allinone.training.cli import recipe_defaults
from allinone.training.profile import profile_steps
from allinone.utils.device import DEVICES, resolve_device
from allinone.utils.memory import peak_rss_mb, reset_peak_rss
from allinone.utils.options import str2bool

RECIPE_DEFAULTS = recipe_defaults(Path(__file__).resolve().parent / "train.py")
DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def corpus_batches(args, tok):
    """Training batches of the recipe's train set: ``(features, lens, labels)``."""
    cuts, _ = filter_cuts(load_cuts(args.cuts, lazy=False), tok)
    dm = AsrDataModule(max_duration=args.max_duration, num_workers=0, seed=0)
    out = []
    for batch in dm.train_dataloader(dm.train_sampler(cuts), epoch=1):
        b = unpack_batch(batch)
        out.append((b.features, b.feature_lens, tok.encode_batch(b.texts, b.cut_ids)))
        if len(out) == args.warmup_batches + args.num_batches:
            break
    return out, tok.vocab_size


def random_batches(args):
    """Batches of ``--utterance-seconds`` utterances filling ``--max-duration``, random
    80-dim features and ``--tokens-per-second`` random labels (a LibriSpeech-like shape)."""
    g = torch.Generator().manual_seed(0)
    n = max(1, int(args.max_duration // args.utterance_seconds))
    frames = int(args.utterance_seconds * 100)
    tokens = int(args.utterance_seconds * args.tokens_per_second)
    out = []
    for _ in range(args.warmup_batches + args.num_batches):
        labels = torch.randint(1, args.vocab_size, (n, tokens), generator=g).tolist()
        out.append((torch.randn(n, frames, 80, generator=g), torch.full((n,), frames), labels))
    return out, args.vocab_size


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
    p.add_argument("--device", default="cpu", choices=DEVICES)
    p.add_argument("--dtype", default="fp32", choices=sorted(DTYPES))
    p.add_argument(
        "--model-preset", default="", choices=[""] + sorted(MODEL_PRESETS), help="default: the recipe's model"
    )
    p.add_argument("--random-batches", type=str2bool, default=False, help="random LibriSpeech-like batches")
    p.add_argument("--utterance-seconds", type=float, default=15.0)
    p.add_argument("--tokens-per-second", type=float, default=3.0)
    p.add_argument("--vocab-size", type=int, default=500, help="with --random-batches")
    args = p.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(args.num_threads)
    device, dtype = resolve_device(args.device), DTYPES[args.dtype]
    batches, vocab = (
        random_batches(args) if args.random_batches else corpus_batches(args, BpeTokenizer(args.bpe_model))
    )
    batches = [(f.to(device), n.to(device), y) for f, n, y in batches]
    values = model_preset(args.model_preset) if args.model_preset else RECIPE_DEFAULTS["model"]
    model = build_model(ModelConfig(vocab_size=vocab, use_ctc=True, **values)).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    profile_steps(model, opt, batches[: args.warmup_batches], dtype=dtype)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    peak_resettable = reset_peak_rss()
    times = profile_steps(model, opt, batches[args.warmup_batches :], dtype=dtype)
    if device.type == "cuda":
        gpu = torch.cuda.get_device_name(device)
        peak = f"{torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB allocated on {gpu}"
    else:
        peak = f"{peak_rss_mb():.0f} MiB resident" + ("" if peak_resettable else " (since start)")

    step = times.parts["step"]
    params = sum(p.numel() for p in model.parameters())
    source = (
        f"random {args.utterance_seconds:g} s utterances"
        if args.random_batches
        else f"batches of {args.cuts.name}"
    )
    print(
        f"model: {params / 1e6:.2f}M parameters ({args.model_preset or 'recipe model'}), "
        f"{device}, {args.dtype}, "
        f"{args.num_threads} threads, {args.num_batches} {source} of max {args.max_duration:.0f} s, "
        f"{times.audio_seconds:.0f} s audio"
    )
    print("| measure | value |\n|---|---|")
    throughput = times.audio_seconds / step
    print(f"| training step throughput (fwd+bwd+AdamW, no data loading) | {throughput:.1f} s audio/s |")
    print(f"| mean step time | {step / args.num_batches:.3f} s |")
    print(f"| peak memory of the steps | {peak} |")
    rows = {
        "simple_loss": "simple loss + prune ranges (fwd+bwd)",
        "pruned_loss": "pruned loss incl. joiner (fwd+bwd)",
        "loss_subgraph": "decoder + joiner + both losses (fwd+bwd)",
    }
    for key, label in rows.items():
        print(f"| {label} share of step | {100 * times.parts[key] / step:.1f}% |")


if __name__ == "__main__":
    main()
