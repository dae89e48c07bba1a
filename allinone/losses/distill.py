"""KL distillation between frame-level output distributions of two subnets."""

import torch


def masked_kl(
    teacher_log_probs: torch.Tensor, student_log_probs: torch.Tensor, lens: torch.Tensor
) -> torch.Tensor:
    """Per-utterance KL(teacher || student) over valid frames, in float32.

    Args:
        teacher_log_probs: (N, T, ..., V) log-probabilities (detach them for distillation).
        student_log_probs: same shape.
        lens: (N,) valid frames; frames ``>= lens[n]`` are padding and contribute nothing.
    Returns:
        (N,): KL summed over V and valid frames, averaged over any dims between T and V
        (e.g. the symbol positions of a pruned transducer lattice).
    """
    if teacher_log_probs.shape != student_log_probs.shape:
        raise ValueError(
            f"teacher {tuple(teacher_log_probs.shape)} vs student {tuple(student_log_probs.shape)}"
        )
    t = teacher_log_probs.float()
    s = student_log_probs.float()
    kl = (t.exp() * (t - s)).sum(-1)  # (N, T, ...)
    if kl.dim() > 2:
        kl = kl.flatten(2).mean(-1)
    valid = torch.arange(kl.size(1), device=kl.device)[None, :] < lens[:, None]
    return (kl * valid).sum(1)
