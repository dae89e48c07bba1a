"""Per-subnet validation losses of finished runs, read back from their training logs.

The trainer logs one line per epoch,

    epoch 12: validation loss/frame 0.0530 (d6-w1.0-b32 0.0511, d4-w1.0-b32 0.0536, ...)

with the per-subnet values in parentheses for a nested run and none for a single-subnet
run (whose subnet is named in ``train-summary.json``). Comparing a one pass with its
individually trained twins on this held-out (dev) loss says which subnets the nested
training under-serves without looking at any test set.
"""

import json
import re
from pathlib import Path
from typing import Dict, List, Sequence

_LINE = re.compile(r"epoch (\d+): validation loss/frame ([0-9.]+)(?: \((.*)\))?\s*$")


def read_valid_losses(exp_dir: Path) -> Dict[int, Dict[str, float]]:
    """``{epoch: {subnet: dev loss per frame}}`` from ``exp_dir/log/log-train-*``.

    Log files are read oldest first, so an epoch run again after a resume keeps its last value.

    Raises:
        FileNotFoundError: ``exp_dir`` has no training log.
        ValueError: a single-subnet run whose ``train-summary.json`` does not name one subnet.
    """
    exp_dir = Path(exp_dir)
    logs = sorted((exp_dir / "log").glob("log-train-*"))
    if not logs:
        raise FileNotFoundError(f"{exp_dir}/log holds no log-train-* file")
    single = None
    out: Dict[int, Dict[str, float]] = {}
    for log in logs:
        for line in log.read_text().splitlines():
            m = _LINE.search(line)
            if m is None:
                continue
            epoch, total, per_subnet = int(m.group(1)), float(m.group(2)), m.group(3)
            if per_subnet:
                out[epoch] = {name: float(v) for name, v in (kv.split() for kv in per_subnet.split(", "))}
            else:
                single = single or _only_subnet(exp_dir)
                out[epoch] = {single: total}
    return out


def _only_subnet(exp_dir: Path) -> str:
    summary = exp_dir / "train-summary.json"
    subnets = json.loads(summary.read_text()).get("subnets", []) if summary.is_file() else []
    if len(subnets) != 1:
        raise ValueError(
            f"{exp_dir}: its log has validation losses without subnet names, and {summary} "
            f"does not name its one subnet (found {subnets})"
        )
    return subnets[0]


def mean_over_epochs(
    losses: Dict[int, Dict[str, float]], subnet: str, epochs: Sequence[int], where: str
) -> float:
    missing = [e for e in epochs if subnet not in losses.get(e, {})]
    if missing:
        raise ValueError(f"{where}: no validation loss of {subnet} at epoch(s) {missing}")
    return sum(losses[e][subnet] for e in epochs) / len(epochs)


def valid_loss_gaps(aio_dir: Path, individual_root: Path, epochs: Sequence[int]) -> List[dict]:
    """Per subnet of the one pass in ``aio_dir``: its mean dev loss over ``epochs``, its
    twin's (``individual_root/<subnet>``), and the gap (one pass minus twin; > 0: behind)."""
    aio = read_valid_losses(aio_dir)
    last = aio[max(aio)] if aio else {}
    rows = []
    for name in last:
        mine = mean_over_epochs(aio, name, epochs, str(aio_dir))
        twin_dir = Path(individual_root) / name
        twin = mean_over_epochs(read_valid_losses(twin_dir), name, epochs, str(twin_dir))
        rows.append({"subnet": name, "all_in_one": mine, "individual": twin, "gap": mine - twin})
    return rows
