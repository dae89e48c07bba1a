"""Self-supervised pretraining of a small wav2vec 2.0 on a corpus's untranscribed audio.

No pretrained foundation model can be downloaded where this repository is tested, so its
wav2vec 2.0 recipes pretrain their own: ``transformers``' ``Wav2Vec2ForPreTraining``
(contrastive loss against quantized targets among sampled distractors, plus the codebook
diversity loss) on the training cuts' audio, their transcripts unused. The result is
saved with ``save_pretrained`` in the Hub's directory layout, so fine-tuning loads it
through ``train.py --pretrained-dir`` exactly as it loads a downloaded checkpoint.

Schedule: AdamW (betas 0.9/0.98, eps 1e-6, weight decay 0.01), linear warm-up then linear
decay to zero at ``--num-steps``; Gumbel temperature ``2.0 * 0.999995^step``, floored at
0.5 (the wav2vec 2.0 paper's values). Time masks: spans of 10 frames starting at 6.5% of
the frames (mask probability 0.65), 100 distractors. The saved config sets the masking
probability to 0.05, fine-tuning's value (as the published checkpoints' configs do). Inputs
are normalised per utterance (``normalize_waveform``), as fine-tuning and decoding do. A run
stops at ``--num-steps`` or after ``--max-minutes``, whichever comes first; a checkpoint is
written atomically every ``--save-every-steps`` (0: at the end only) and a killed run
resumes from it: the same epoch's order after the batches already seen, the torch random
state restored.
"""

import argparse
import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Dict

import torch

from allinone.data.batch import unpack_batch
from allinone.data.datamodule import AsrDataModule, check_audio_exists, load_cuts
from allinone.nn.ssl import normalize_waveform
from allinone.utils.atomic import write_atomic
from allinone.utils.device import DEVICES, resolve_device
from allinone.utils.log import setup_logger
from allinone.utils.options import add_dataclass_arguments, dataclass_from_args, option

# Small configurations that pretrain on CPU cores; transformers' defaults fill the rest.
SSL_MODEL_PRESETS: Dict[str, Dict] = {
    # 4 pre-LN layers of 144, a 7-layer feature encoder of 128 channels (320x: 20 ms frames)
    "wav2vec2-digits": dict(
        hidden_size=144, num_hidden_layers=4, num_attention_heads=4, intermediate_size=576,
        conv_dim=(128,) * 7, feat_extract_norm="layer", do_stable_layer_norm=True,
        num_conv_pos_embeddings=64, num_conv_pos_embedding_groups=8,
        codevector_dim=128, proj_codevector_dim=128, num_codevectors_per_group=64,
        num_codevector_groups=2, hidden_dropout=0.1, attention_dropout=0.1, feat_proj_dropout=0.1,
        layerdrop=0.05, mask_time_prob=0.65, mask_time_length=10, num_negatives=100,
    ),
}  # fmt: skip
CHECKPOINT = "pretrain-checkpoint.pt"
FINE_TUNING_MASK_TIME_PROB = 0.05  # wav2vec 2.0's fine-tuning value (the base model's config)
HUB_DIR = "hub"


@dataclass
class PretrainOptions:
    """The settings of ``pretrain.py``; each field is a flag."""

    exp_dir: Path = option(
        Path("wav2vec2_ctc/exp_pretrain"), "checkpoints, log and the Hub-layout model (hub/)"
    )
    manifest_dir: Path = option(Path("data/fbank"), "directory of the cut manifests")
    train_cuts: str = option("synth_digits_cuts_train.jsonl.gz", "cuts whose audio is pretrained on")
    model_preset: str = option("wav2vec2-digits", "model size", tuple(SSL_MODEL_PRESETS))
    max_duration: float = option(60.0, "seconds of audio per batch")
    num_steps: int = option(4000, "optimizer steps (the learning rate reaches zero here)")
    max_minutes: float = option(0.0, "also stop after this many minutes of training (0: no limit)")
    base_lr: float = option(5e-4, "peak learning rate")
    warmup_steps: int = option(400, "linear warm-up steps")
    save_every_steps: int = option(200, "write the resumable checkpoint this often")
    log_every_steps: int = option(20, "log the losses this often")
    min_duration: float = option(1.0, "skip cuts shorter than this (seconds)")
    seed: int = option(42, "sampler, masks and distractors")
    device: str = option(
        "auto", "where the model runs: auto (the GPU when there is one), cpu or cuda", DEVICES
    )
    num_workers: int = option(1, "data loader processes")


def _lr_factor(step: int, options: PretrainOptions) -> float:
    if step < options.warmup_steps:
        return (step + 1) / options.warmup_steps
    return max(0.0, (options.num_steps - step) / max(1, options.num_steps - options.warmup_steps))


def _gumbel_temperature(step: int) -> float:
    return max(0.5, 2.0 * 0.999995**step)


def _masks(model, lens: torch.Tensor, num_frames: int, generator_seed: int):
    """Time masks (N, T') and sampled distractor indices of a batch, as transformers draws them."""
    import numpy as np
    from transformers.models.wav2vec2.modeling_wav2vec2 import _compute_mask_indices, _sample_negative_indices

    cfg = model.config
    frame_lens = model._get_feat_extract_output_lengths(lens).long()
    frame_mask = (torch.arange(num_frames)[None, :] < frame_lens[:, None]).long()
    np.random.seed(generator_seed % 2**32)  # transformers draws masks from numpy's global RNG
    mask = _compute_mask_indices(
        (lens.size(0), num_frames),
        cfg.mask_time_prob,
        cfg.mask_time_length,
        attention_mask=frame_mask,
        min_masks=2,
    )
    negatives = _sample_negative_indices((lens.size(0), num_frames), cfg.num_negatives, mask)
    return torch.from_numpy(mask), torch.from_numpy(negatives)


def save_hub_dir(model, exp_dir: Path) -> Path:
    """``save_pretrained`` into ``<exp_dir>/hub`` through a temporary directory and a rename."""
    final, tmp = exp_dir / HUB_DIR, exp_dir / f".{HUB_DIR}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    return final


def pretrain(options: PretrainOptions) -> Dict:
    """Run (or resume) the pretraining; returns the summary also written to ``pretrain-summary.json``."""
    import transformers

    exp = Path(options.exp_dir)
    exp.mkdir(parents=True, exist_ok=True)
    setup_logger(exp / "log" / "log-pretrain")
    torch.manual_seed(options.seed)
    path = Path(options.manifest_dir) / options.train_cuts
    cuts = load_cuts(path, lazy=False)
    check_audio_exists(cuts, str(path), limit=None)
    cuts = cuts.filter(lambda c: c.duration >= options.min_duration).to_eager()
    hours = sum(c.duration for c in cuts) / 3600
    config = transformers.Wav2Vec2Config(**SSL_MODEL_PRESETS[options.model_preset])
    device = resolve_device(options.device)
    model = transformers.Wav2Vec2ForPreTraining(config).to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), options.base_lr, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01
    )
    step, seen, epoch, in_epoch, wall = 0, 0.0, 0, 0, 0.0
    last: Dict[str, float] = {}
    if (exp / CHECKPOINT).is_file():
        state = torch.load(exp / CHECKPOINT, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])  # (loaded on the CPU, copied into the model's device)
        optimizer.load_state_dict(state["optimizer"])
        step, seen, wall = state["step"], state["audio_seconds"], state["wall_seconds"]
        epoch, in_epoch = state["epoch"], state["batch_in_epoch"]
        last = state.get("last_losses", {})  # the summary's final losses, should no step run now
        torch.set_rng_state(state["rng"])  # dropout, LayerDrop and Gumbel noise continue as they were
        logging.info(f"resumed from {exp / CHECKPOINT} at step {step} (epoch {epoch}, batch {in_epoch})")
    params = sum(p.numel() for p in model.wav2vec2.parameters())
    logging.info(
        f"wav2vec 2.0 {options.model_preset}: {params / 1e6:.2f}M encoder parameters, {hours:.2f} h of audio"
    )
    dm = AsrDataModule(
        options.max_duration, num_workers=options.num_workers, seed=options.seed, raw_audio=True
    )
    start = time.time() - wall
    done = step >= options.num_steps  # a finished run only writes its outputs again
    model.train()
    while not done:
        batches = 0
        for raw in dm.train_dataloader(dm.train_sampler(cuts), epoch, start_batch=in_epoch):
            batches += 1
            batch = unpack_batch(raw)
            x, lens = batch.features, batch.feature_lens
            num_frames = int(model._get_feat_extract_output_lengths(torch.tensor(x.size(1))))
            mask, negatives = _masks(model, lens, num_frames, options.seed * 100003 + step)
            model.set_gumbel_temperature(_gumbel_temperature(step))
            for group in optimizer.param_groups:
                group["lr"] = options.base_lr * _lr_factor(step, options)
            sample_mask = (torch.arange(x.size(1))[None, :] < lens[:, None]).long()
            x = normalize_waveform(x, lens)
            out = model(
                x.to(device),
                attention_mask=sample_mask.to(device),
                mask_time_indices=mask.to(device),
                sampled_negative_indices=negatives.to(device),
            )
            masked = mask.sum().clamp(min=1)
            loss = out.loss / masked
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            optimizer.step()
            step += 1
            in_epoch += 1
            seen += sum(batch.durations)
            last = {
                "contrastive_per_masked_frame": float(out.contrastive_loss) / float(masked),
                "diversity_per_masked_frame": float(out.diversity_loss) / float(masked),
                "codevector_perplexity": float(out.codevector_perplexity),
            }
            if step % options.log_every_steps == 0:
                logging.info(f"step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in last.items()))
            minutes = (time.time() - start) / 60
            done = step >= options.num_steps or (options.max_minutes > 0 and minutes >= options.max_minutes)
            if done or (options.save_every_steps > 0 and step % options.save_every_steps == 0):
                state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                         "audio_seconds": seen, "epoch": epoch, "batch_in_epoch": in_epoch,
                         "wall_seconds": time.time() - start, "rng": torch.get_rng_state(),
                         "last_losses": last}  # fmt: skip
                write_atomic(exp / CHECKPOINT, partial(torch.save, state))
            if done:
                break
        else:
            if batches == 0 and in_epoch == 0:
                raise ValueError(
                    f"{path}: no batch of {options.max_duration} s from cuts of >= {options.min_duration} s"
                )
            epoch, in_epoch = epoch + 1, 0
    # The Hub config carries fine-tuning's masking, as published checkpoints do: pretraining
    # masks 65% of the frames, which would swamp CTC fine-tuning that follows the config.
    model.config.mask_time_prob = FINE_TUNING_MASK_TIME_PROB
    hub = save_hub_dir(model, exp)
    summary = {
        "options": {k: str(v) for k, v in asdict(options).items()},
        "encoder_params": params,
        "corpus_hours": hours,
        "audio_hours_seen": seen / 3600,
        "steps": step,
        "wall_seconds": time.time() - start,
        "final": last,
        "hub_dir": str(hub),
    }
    (exp / "pretrain-summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    logging.info(json.dumps(summary))
    return summary


def pretrain_main(defaults: Dict[str, object], description: str) -> None:
    """The whole ``pretrain.py`` of a recipe: flags (``defaults`` by field name), then pretraining."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_dataclass_arguments(parser, PretrainOptions, defaults)
    options = dataclass_from_args(PretrainOptions, parser.parse_args())
    summary = pretrain(options)
    loss = summary["final"].get("contrastive_per_masked_frame", float("nan"))
    print(
        f"{summary['steps']} steps, {summary['audio_hours_seen']:.2f} h of audio seen, "
        f"contrastive loss {loss:.3f} per masked frame; model in {summary['hub_dir']}"
    )
