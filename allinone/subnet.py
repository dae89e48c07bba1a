"""Sub-network selection passed explicitly down the model (no global state).

A ``SubnetConfig`` names which part of a nested model to run. This first version
covers encoder depth and FFN width; precision and unfolding schedules extend it.
"""

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class SubnetConfig:
    """Which slice of the shared encoder to run.

    Args:
        depth: number of encoder layers to run (layers 1..depth); None = all.
        ffn_ratio: fraction of each FFN's hidden units to use (a prefix slice), in (0, 1].
    """

    depth: Optional[int] = None
    ffn_ratio: float = 1.0

    def __post_init__(self):
        if self.depth is not None and self.depth < 1:
            raise ValueError(f"depth must be >= 1, got {self.depth}")
        if not 0.0 < self.ffn_ratio <= 1.0:
            raise ValueError(f"ffn_ratio must be in (0, 1], got {self.ffn_ratio}")


FULL = SubnetConfig()
