"""Unfolded (weight-tied) logical depths versus plain models of the same depth.

Per logical depth of one unfolding run: unique encoder parameters and stored bytes of
both kinds, peak training-step memory (``benchmark_memory.py --json-out`` records),
real-time factor and WER with the MAPSSWE p-value against the plain model trained
individually with the same recipe.
"""

import json
from pathlib import Path
from typing import Dict, List, Optional

from allinone.deploy.accounting import encoder_footprint
from allinone.nn.build import build_model
from allinone.nn.model import ModelConfig
from allinone.reports.criterion import SINGLE_SEED_NOTE
from allinone.reports.decodings import load_decoded, mapsswe_per_set
from allinone.reports.run_records import model_config, train_seconds
from allinone.subnet import SubnetConfig


def plain_twin(name: str) -> SubnetConfig:
    """The untied subnet of the same logical depth, width and bits as subnet ``name``."""
    s = SubnetConfig.from_name(name)
    return SubnetConfig(depth=s.depth, ffn_ratio=s.ffn_ratio, bits=s.bits, class_bits=s.class_bits)


def encoder_params(exp_dir: Path, epoch: int, subnet: SubnetConfig) -> int:
    """Unique encoder parameters ``subnet`` runs in the model saved as ``exp_dir/epoch-<epoch>.pt``."""
    cfg = model_config(exp_dir, epoch)
    return encoder_footprint(build_model(cfg).encoder, subnet).params


def read_memory(path: Optional[Path]) -> List[Dict]:
    """Records ``benchmark_memory.py --json-out`` appended (empty when there is no file)."""
    if path is None or not Path(path).is_file():
        return []
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def _peak(records: List[Dict], subnets: str, num_layers: int) -> Optional[float]:
    """Newest step-peak increase (MiB) measured for ``subnets`` on a model of ``num_layers`` blocks."""
    hits = [r for r in records if r["subnets"] == subnets and r["num_layers"] == num_layers]
    return hits[-1]["step_peak_increase_mb"] if hits else None


def compare_unfolding(
    unfold_dir: Path,
    plain_root: Path,
    method: str,
    epoch: int,
    memory_file: Optional[Path] = None,
    grid_name: str = "unfold",
    alpha: float = 0.05,
) -> Dict:
    """Everything the unfolding report shows, as plain data.

    Args:
        unfold_dir: exp dir of the unfolding run (decoded with ``--subnets all``).
        plain_root: holds ``<plain twin name>/`` exp dirs, each decoded.
        method: decoding method directory name.
        epoch: the epoch decoded in every exp dir.
        memory_file: JSON lines of ``benchmark_memory.py`` (optional).
        grid_name: the ``--subnets`` value of the unfolding run, to find its memory record.
    """
    unfolded = load_decoded(unfold_dir, method, epoch)
    cfg = ModelConfig.from_dict(model_config(unfold_dir, epoch))
    blocks = cfg.num_layers
    memory = read_memory(memory_file)
    rows = []
    for name, u in unfolded.items():
        subnet = SubnetConfig.from_name(name)
        twin = plain_twin(name)
        depth = subnet.resolved(blocks).depth
        plain_dir = Path(plain_root) / twin.name
        plain = load_decoded(plain_dir, method, epoch)[twin.name]
        u_params = encoder_params(unfold_dir, epoch, subnet)
        p_params = encoder_params(plain_dir, epoch, twin)
        vs_plain = mapsswe_per_set(u, plain, alpha)
        rows.append(
            {
                "subnet": name,
                "plain": twin.name,
                "logical_depth": depth,
                "schedule": list(subnet.schedule(blocks)),
                "encoder_params": u_params,
                "plain_encoder_params": p_params,
                "fewer_encoder_params": 1.0 - u_params / p_params,
                "stored_mb": u.stored_bytes / 1e6,
                "plain_stored_mb": plain.stored_bytes / 1e6,
                "train_peak_mb": _peak(memory, name, blocks),
                "plain_train_peak_mb": _peak(memory, twin.name, depth),
                "rtf": u.rtf,
                "plain_rtf": plain.rtf,
                "wer": u.wer,
                "plain_wer": plain.wer,
                "vs_plain": vs_plain,
                "significantly_worse": any(t["better"] == "B" for t in vs_plain.values()),
                "plain_train_seconds": train_seconds(plain_dir, epoch),
            }
        )
    rows.sort(key=lambda r: -r["logical_depth"])
    deepest = rows[0]
    return {
        "method": method,
        "epoch": epoch,
        "alpha": alpha,
        "physical_blocks": blocks,
        "rows": rows,
        "unfold_train_seconds": train_seconds(unfold_dir, epoch),
        "plain_train_seconds_sum": sum(r["plain_train_seconds"] for r in rows),
        "one_pass_train_peak_mb": _peak(memory, grid_name, blocks),
        "deepest": deepest["subnet"],
        "deepest_significantly_worse": deepest["significantly_worse"],
        "deepest_fewer_encoder_params": deepest["fewer_encoder_params"],
        "significantly_worse": [r["subnet"] for r in rows if r["significantly_worse"]],
    }


def _mb(v: Optional[float]) -> str:
    return "-" if v is None else f"{v:.0f}"


def format_unfold_report(report: Dict) -> str:
    rows = report["rows"]
    test_sets = list(rows[0]["wer"])
    head = ["logical depth", "unfolded subnet", "enc. params unfolded / plain (M)", "fewer", "stored MB"]
    head += ["step peak MiB unfolded / plain", "RTF unfolded / plain"]
    for t in test_sets:
        head += [f"{t} unfolded", f"{t} plain", f"{t} p"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for r in rows:
        cells = [
            str(r["logical_depth"]),
            r["subnet"],
            f"{r['encoder_params'] / 1e6:.3f} / {r['plain_encoder_params'] / 1e6:.3f}",
            f"{100 * r['fewer_encoder_params']:.0f}%",
            f"{r['stored_mb']:.2f} / {r['plain_stored_mb']:.2f}",
            f"{_mb(r['train_peak_mb'])} / {_mb(r['plain_train_peak_mb'])}",
            f"{r['rtf']:.4f} / {r['plain_rtf']:.4f}",
        ]
        for t in test_sets:
            v = r["vs_plain"][t]
            mark = {"A": " (unfolded better)", "B": " (unfolded worse)", "same": ""}[v["better"]]
            cells += [f"{r['wer'][t]:.2f}", f"{r['plain_wer'][t]:.2f}", f"{v['p']:.3f}{mark}"]
        lines.append("| " + " | ".join(cells) + " |")
    worse = report["significantly_worse"]
    fewer = 100 * report["deepest_fewer_encoder_params"]
    deepest_worse = "yes" if report["deepest_significantly_worse"] else "no"
    lines += [
        "",
        f"{report['physical_blocks']} physical blocks. MAPSSWE at p < {report['alpha']} per test set against "
        f"the plain model of the same logical depth trained alone. WER in %, {report['method']}, epoch "
        f"{report['epoch']}. Step peak = RSS increase of a training step that runs that path alone.",
        SINGLE_SEED_NOTE,
        "",
        f"- Significantly worse than their plain twin: {', '.join(worse) if worse else 'none'}",
        f"- Deepest unfolded ({report['deepest']}): {fewer:.0f}% fewer encoder parameters; "
        f"significantly worse: {deepest_worse}",
        f"- Training wall time: unfolding one pass {report['unfold_train_seconds']:.0f} s; "
        f"plain models summed {report['plain_train_seconds_sum']:.0f} s",
        f"- Step peak of the one-pass unfolding step: {_mb(report['one_pass_train_peak_mb'])} MiB",
    ]
    return "\n".join(lines) + "\n"


def write_unfold_report(report: Dict, out_dir: Path) -> None:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "comparison.md").write_text(format_unfold_report(report))
    (out_dir / "comparison.json").write_text(json.dumps(report, indent=2) + "\n")
