"""RNN-T losses: a pure-PyTorch implementation and an optional k2 backend.

Both backends expose the functions named in :data:`RNNT_API` with k2's semantics, so a
model can switch between them with :func:`get_rnnt_backend`.
"""

from types import ModuleType

RNNT_API = (
    "get_rnnt_logprobs",
    "get_rnnt_logprobs_smoothed",
    "get_rnnt_logprobs_joint",
    "get_rnnt_logprobs_pruned",
    "mutual_information_recursion",
    "rnnt_loss_simple",
    "rnnt_loss_smoothed",
    "rnnt_loss",
    "rnnt_loss_pruned",
    "get_rnnt_prune_ranges",
    "do_rnnt_pruning",
)

_BACKENDS = ("torch", "k2")


def get_rnnt_backend(name: str) -> ModuleType:
    """Return the module implementing :data:`RNNT_API` for a backend.

    Args:
        name: "torch" (pure PyTorch, always available) or "k2".
    Returns:
        The backend module (``allinone.losses.rnnt`` or ``allinone.losses.rnnt_k2``).
    Raises:
        ImportError: for "k2" when k2 cannot be imported.
        ValueError: for an unknown name.
    """
    if name == "torch":
        from allinone.losses import rnnt

        return rnnt
    if name == "k2":
        from allinone.losses import rnnt_k2

        rnnt_k2.import_k2()  # fail now, with a clear message, rather than mid-training
        return rnnt_k2
    raise ValueError(f"unknown RNN-T loss backend {name!r}; choose one of {_BACKENDS}")


__all__ = ["RNNT_API", "get_rnnt_backend"]
