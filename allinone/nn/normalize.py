"""Per-utterance feature normalisation in front of the encoder."""

import torch


def utterance_cmvn(x: torch.Tensor, x_lens: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Normalise each utterance's features to zero mean and unit variance per dimension.

    Log-mel energies carry a large constant offset (recording level, voice, channel)
    that dwarfs their frame-to-frame variation; removing it per utterance lets the
    encoder see the variation from the first step, needs no corpus statistics, and
    treats unseen voices and levels the same way as training ones. Padding is excluded
    from the statistics and set to zero.

    Args:
        x: (N, T, F) features.
        x_lens: (N,) valid frame counts.
    Returns:
        (N, T, F) normalised features.
    """
    mask = (torch.arange(x.size(1), device=x.device)[None, :] < x_lens[:, None]).unsqueeze(-1)
    count = x_lens.clamp(min=1).to(x.dtype)[:, None, None]
    mean = (x * mask).sum(1, keepdim=True) / count
    var = (((x - mean) * mask) ** 2).sum(1, keepdim=True) / count
    return ((x - mean) / (var + eps).sqrt()) * mask
