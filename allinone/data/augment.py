"""SpecAugment frequency and time masking, run in the training process.

Masks are drawn from torch's global generator in the main process (not in data
loader workers), so the RNG state saved in a checkpoint fully determines them and a
resumed run reproduces an uninterrupted one bit for bit.
"""

from dataclasses import dataclass

import torch


@dataclass
class SpecAugmentConfig:
    """Masking settings.

    Args:
        num_freq_masks: frequency bands masked per utterance.
        max_freq_width: widest frequency band, in bins.
        num_time_masks: time spans masked per utterance.
        max_time_width: longest time span, in frames.
        max_time_fraction: cap on one span as a fraction of the utterance, so a short
            utterance never loses a whole word.
    """

    num_freq_masks: int = 2
    max_freq_width: int = 15
    num_time_masks: int = 2
    max_time_width: int = 20
    max_time_fraction: float = 0.1


def spec_augment(features: torch.Tensor, lengths: torch.Tensor, cfg: SpecAugmentConfig) -> torch.Tensor:
    """Mask random frequency bands and time spans with the utterance's mean value.

    Args:
        features: (N, T, F) log-mel features (not modified in place).
        lengths: (N,) valid frame counts.
        cfg: mask settings.
    Returns:
        (N, T, F) masked features.
    """
    n, t, f = features.shape
    out = features.clone()
    bins = torch.arange(f)
    frames = torch.arange(t)
    for i in range(n):
        valid = int(lengths[i])
        fill = out[i, :valid].mean()
        for _ in range(cfg.num_freq_masks):
            width = int(torch.randint(0, cfg.max_freq_width + 1, ()))
            start = int(torch.randint(0, max(1, f - width), ()))
            out[i, :, (bins >= start) & (bins < start + width)] = fill
        max_width = min(cfg.max_time_width, int(cfg.max_time_fraction * valid))
        for _ in range(cfg.num_time_masks):
            width = int(torch.randint(0, max_width + 1, ()))
            start = int(torch.randint(0, max(1, valid - width), ()))
            out[i, (frames >= start) & (frames < start + width)] = fill
    return out
