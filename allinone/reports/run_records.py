"""What the reports read from a run's ``epoch-N.pt``: training times, recipe, model config.

Every comparison reads these from the checkpoints of the exp dirs it compares, and checks
with them that the runs it puts side by side were trained with one recipe.
"""

from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Sequence, Tuple

from allinone.checkpoint.record import read_record
from allinone.subnet import SubnetConfig, SubnetError
from allinone.training.recipe import (
    QUANTIZER_ONLY_MODEL_OPTIONS,
    RECIPE_KEYS,
    config_differences,
    model_values,
)
from allinone.training.resume import numbered

RECORD_KEYS = ("train_seconds", "train_cpu_seconds", "train_config", "model_config", "source")


@lru_cache(maxsize=None)
def _run_record(run_dir: Path, epoch: int) -> Dict[str, Any]:
    """The fields of ``run_dir/epoch-<epoch>.pt`` the reports use. Loaded once per run,
    however many comparisons ask (a checkpoint holds the whole model)."""
    path = run_dir / f"epoch-{epoch}.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: did training reach epoch {epoch}?")
    record = read_record(path)
    # An empty config is one the writing train.py did not record.
    return {k: getattr(record, k) if getattr(record, k) != {} else None for k in RECORD_KEYS}


def record_field(exp_dir: Path, epoch: int, key: str) -> Any:
    """``key`` of ``exp_dir/epoch-<epoch>.pt``.

    Raises:
        FileNotFoundError: no such checkpoint.
        ValueError: the checkpoint does not record ``key`` (written by an older train.py).
    """
    run_dir = Path(exp_dir).resolve()
    value = _run_record(run_dir, epoch)[key]
    if value is None:
        raise ValueError(f"{run_dir}/epoch-{epoch}.pt records no {key} (written by an older train.py)")
    return value


def last_epoch(exp_dir: Path) -> int:
    """The newest ``epoch-N.pt`` of ``exp_dir``."""
    epochs = numbered(exp_dir, "epoch")
    if not epochs:
        raise FileNotFoundError(f"no epoch-N.pt in {exp_dir}: has the run finished?")
    return epochs[-1]


def train_seconds(exp_dir: Path, epoch: int, key: str = "train_seconds") -> float:
    """Training-loop wall time (or with ``key="train_cpu_seconds"`` its CPU time) up to the
    end of ``epoch``, kept in ``epoch-<epoch>.pt`` across resumes."""
    return float(record_field(exp_dir, epoch, key))


def model_config(exp_dir: Path, epoch: int) -> Dict[str, Any]:
    """The model configuration (``ModelConfig.to_dict``) saved in ``epoch-<epoch>.pt``."""
    return record_field(exp_dir, epoch, "model_config")


def run_seed(exp_dir: Path, epoch: int) -> int:
    """The ``--seed`` a run was trained with; for a record made without training (int8
    post-training quantization: no training config, a source checkpoint), the seed of the
    checkpoint it was made from."""
    fields = _run_record(Path(exp_dir).resolve(), epoch)
    if fields["train_config"] is None and fields["source"]:
        source = Path(fields["source"])
        return run_seed(source.parent, int(source.stem.rsplit("-", 1)[-1]))
    return record_field(exp_dir, epoch, "train_config")["seed"]


def recipe_differences(a_dir: Path, b_dir: Path, epoch: int) -> Dict[str, Tuple]:
    """The recipe settings (``allinone.training.recipe.RECIPE_KEYS``) that differ between
    two runs' ``epoch-<epoch>.pt``: ``{key: (value in a, value in b)}``; empty when both
    used the same recipe."""
    a, b = (record_field(d, epoch, "train_config") for d in (a_dir, b_dir))
    return config_differences(a, b, RECIPE_KEYS)


def _float_subnet_dir(d: Path) -> bool:
    """Whether ``d`` is named like a subnet that runs no quantizer (float weights and heads)."""
    try:
        subnet = SubnetConfig.from_name(Path(d).name)
    except SubnetError:
        return False
    return subnet.is_float


def _only_quantizer_options_differ(models: tuple) -> bool:
    """Whether two runs' model settings differ in ``QUANTIZER_ONLY_MODEL_OPTIONS`` alone."""
    a, b = ({**QUANTIZER_ONLY_MODEL_OPTIONS, **model_values(m or {})} for m in models)
    differing = {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
    return bool(differing) and differing <= set(QUANTIZER_ONLY_MODEL_OPTIONS)


def check_same_recipe(ref_dir: Path, other_dirs: Sequence[Path], epoch: int) -> None:
    """Refuse a comparison whose runs were trained with another recipe than ``ref_dir``
    (a different learning rate, say): their WER would not be a like-for-like reference.

    One exception: a float twin (``d6-w1.0-b32``) may differ in model options that act on
    quantizers only (``QUANTIZER_ONLY_MODEL_OPTIONS``, e.g. ``quantize_heads``), since a
    float subnet runs no quantizer and trains identically either way
    (``tests/e2e/test_all_in_one.py`` checks this bit for bit)."""
    for d in other_dirs:
        diff = recipe_differences(ref_dir, d, epoch)
        if set(diff) == {"model"} and _float_subnet_dir(d) and _only_quantizer_options_differ(diff["model"]):
            continue
        if diff:
            what = "; ".join(f"{k} {a!r} vs {b!r}" for k, (a, b) in diff.items())
            raise ValueError(f"{d} was trained with another recipe than {ref_dir}: {what}")


def check_distinct_seeds(label: str, dirs: Sequence[Path], epoch: int) -> None:
    """Refuse runs to pool (or to set against each other as two trainings) that share a seed."""
    seeds = {str(d): run_seed(d, epoch) for d in dirs}
    if len(set(seeds.values())) != len(seeds):
        raise ValueError(f"{label} share a seed: {seeds}")
