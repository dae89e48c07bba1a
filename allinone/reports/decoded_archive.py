"""Keep what a comparison reads from a decoded run, without its checkpoints.

An exp dir holds tens of megabytes of checkpoints, but the all-in-one comparison
(:mod:`allinone.reports.nested_comparison`) reads only three kinds of small file from it:
the per-subnet decoding summary, the per-utterance ``recogs-*`` files (for the significance
tests and for pooling seeds) and, from ``epoch-N.pt``, the training times and the recipe.
:func:`archive_run` copies those into a directory laid out like the exp dir, small enough to
commit: the recogs gzip-compressed, the checkpoint replaced by ``run-record-epoch-N.json``.
That comparison accepts such a directory wherever it accepts an exp dir, so a verdict that
pools runs trained on different machines (or in sessions whose exp dirs are gone) can be
recomputed from the repository alone.
"""

import gzip
import json
import shutil
from pathlib import Path
from typing import List

from allinone.utils.checkpoint import load_checkpoint

RECORD_KEYS = ("train_seconds", "train_cpu_seconds", "train_config")


def run_record_path(run_dir: Path, epoch: int) -> Path:
    """Where an archived run keeps what ``epoch-<epoch>.pt`` told the reports."""
    return Path(run_dir) / f"run-record-epoch-{epoch}.json"


def read_run_record(run_dir: Path, epoch: int) -> dict:
    """The training times and recipe of ``run_dir`` at ``epoch``: from ``epoch-<epoch>.pt``
    in an exp dir, from ``run-record-epoch-<epoch>.json`` in an archive."""
    ckpt = Path(run_dir) / f"epoch-{epoch}.pt"
    record = run_record_path(run_dir, epoch)
    if ckpt.is_file():
        state = load_checkpoint(ckpt)
        return {k: state.get(k) for k in RECORD_KEYS}
    if record.is_file():
        return json.loads(record.read_text())
    raise FileNotFoundError(f"{ckpt} missing (and no archived {record.name}): did training reach that epoch?")


def archive_run(exp_dir: Path, out_dir: Path, method: str, epoch: int) -> List[Path]:
    """Copy what the reports read of ``exp_dir``'s decoding at ``epoch`` into ``out_dir``.

    Writes ``out_dir/run-record-epoch-<epoch>.json`` and, under ``out_dir/<method>/``, the
    ``subnet-summary-*-epoch-<epoch>-*.json`` files as they are and the matching
    ``recogs-*`` files gzip-compressed (``.txt.gz``). Returns the files written.

    Raises:
        FileNotFoundError: ``exp_dir`` has no ``epoch-<epoch>.pt`` or nothing decoded from
            it with ``method`` (the message names the directory).
    """
    exp_dir, out_dir = Path(exp_dir), Path(out_dir)
    if exp_dir.resolve() == out_dir.resolve():
        raise ValueError(f"the archive of {exp_dir} cannot be the exp dir itself")
    record = read_run_record(exp_dir, epoch)
    res_dir = exp_dir / method
    tail = f"epoch-{epoch}-"
    summaries = sorted(res_dir.glob(f"subnet-summary-*-{tail}*.json"))
    recogs = sorted(res_dir.glob(f"recogs-*-{tail}*.txt"))
    if not summaries or not recogs:
        gzipped = list(res_dir.glob(f"recogs-*-{tail}*.txt.gz"))
        already = " (its recogs are gzipped: it is an archive already)" if gzipped else ""
        raise FileNotFoundError(
            f"{res_dir}: nothing decoded from epoch {epoch} (no subnet summary or recogs){already}"
        )
    (out_dir / method).mkdir(parents=True, exist_ok=True)
    # An earlier archive of this epoch may hold files of another decoding tag; the report
    # wants exactly one summary per run, so this archive replaces them all.
    for old in (out_dir / method).glob(f"*-{tail}*"):
        old.unlink()
    written = []
    path = run_record_path(out_dir, epoch)
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    written.append(path)
    for src in summaries:
        written.append(Path(shutil.copyfile(src, out_dir / method / src.name)))
    for src in recogs:
        dst = out_dir / method / (src.name + ".gz")
        # mtime=0: the same recogs always give the same bytes, so a re-archive is no git change
        with open(src, "rb") as f_in, open(dst, "wb") as raw:
            with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f_out:
                shutil.copyfileobj(f_in, f_out)
        written.append(dst)
    return written
