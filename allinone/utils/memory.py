"""Resident memory of this process (Linux ``/proc``): training-step benchmarks, decoding summaries.

CPU tensors live in ordinary process memory, so the resident-set high-water mark
(``VmHWM``) is the peak a step needs. Writing ``5`` to ``/proc/self/clear_refs`` resets
that mark, so the peak of the steps alone can be separated from model set-up.
"""

from pathlib import Path
from typing import Callable, Dict


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"{field} not in /proc/self/status (Linux only)")


def rss_mb() -> float:
    """Current resident set size in MiB."""
    return _status_mb("VmRSS")


def peak_rss_mb() -> float:
    """Resident-set high-water mark in MiB (since start or the last ``reset_peak_rss``)."""
    return _status_mb("VmHWM")


def reset_peak_rss() -> bool:
    """Reset the high-water mark to the current RSS; False where the kernel does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def measure_peak(run: Callable[[], None]) -> Dict[str, float]:
    """Run ``run`` and report RSS before it, the peak during it and the difference (MiB)."""
    before = rss_mb()
    reset = reset_peak_rss()
    run()
    peak = peak_rss_mb()
    return {"rss_before_mb": before, "peak_mb": peak, "step_peak_increase_mb": peak - before, "reset": reset}
