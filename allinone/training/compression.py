"""What a compression run adds to training: float initialisation, a frozen float teacher,
quantizer annealing, the mixed-precision bit budget and its finalisation.

Every quantization method of ``allinone.quant`` is trained by the same recipe: start
from a trained float model (``--init-from``), learn from the labels plus KL to the
frozen float model (``--teacher-checkpoint`` with ``--distill true``), anneal GQ's
sharpness and the Gumbel-softmax temperature by global batch, and for one-stage mixed
precision add ``mp_penalty_scale * (expected average bits - target)^2``.
"""

import logging
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn

from allinone.checkpoint.weights import float_weights
from allinone.nn.build import build_model, init_from_float
from allinone.nn.ffn_order import UNIT_ORDERS, reorder_ffn_units
from allinone.quant.annealing import Annealing, AnnealingSchedule, GQSchedule, TauSchedule
from allinone.quant.layers import reset_quant_steps
from allinone.quant.mixed import (
    apply_bit_map,
    average_bits,
    bit_penalty,
    expected_average_bits,
    finalise,
    format_bit_map,
    is_finalised,
    load_bit_map,
    mixed_layers,
    save_bit_map,
)
from allinone.training.config import CompressionOptions
from allinone.training.param_groups import freeze_float_weights


def load_teacher(path: Path, mode: str) -> nn.Module:
    """A frozen float model from checkpoint ``path``, its weights read in ``mode`` (``WEIGHT_MODES``)."""
    weights, cfg = float_weights(path, mode)
    teacher = build_model(cfg)
    teacher.load_state_dict(weights)
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


class Compression:
    """Per-step hooks the trainer calls; all are no-ops for an ordinary training run."""

    def __init__(self, cfg: CompressionOptions, model: nn.Module):
        self.cfg = cfg
        self.annealing = AnnealingSchedule(
            GQSchedule(cfg.gq_alpha_start, cfg.gq_alpha_end, cfg.gq_anneal_batches, None, cfg.gq_hard_grad),
            TauSchedule(cfg.mp_tau_start, cfg.mp_tau_end, cfg.mp_anneal_batches),
        )
        self.searching = bool(mixed_layers(model)) and not cfg.bit_map
        if cfg.mp_target_bits > 0 and not self.searching:
            raise ValueError(
                "--mp-target-bits needs mixed-precision candidates (--model mp_candidates=2,3,4,6,8) "
                "and no --bit-map"
            )
        if cfg.reorder_ffn_units not in UNIT_ORDERS:
            raise ValueError(f"--reorder-ffn-units {cfg.reorder_ffn_units!r}: choose from {UNIT_ORDERS}")
        if cfg.reorder_ffn_units != "none" and model.config.encoder != "conformer":
            raise ValueError(
                f"--reorder-ffn-units orders Conformer FFN units; this is a {model.config.encoder} model"
            )
        if cfg.reorder_ffn_units != "none" and not cfg.init_from:
            raise ValueError(
                "--reorder-ffn-units needs --init-from: the hidden units of a freshly initialised "
                "model have no importance to order by"
            )
        if cfg.pretrained_dir:
            model.encoder.load_pretrained(Path(cfg.pretrained_dir))
            logging.info(f"encoder initialised from the pretrained checkpoint {cfg.pretrained_dir}")
        if cfg.init_from:
            weights, _ = float_weights(Path(cfg.init_from), cfg.float_weights)
            init_from_float(model, weights, cfg.init_from)
            logging.info(f"initialised from the float model {cfg.init_from}")
            if cfg.reorder_ffn_units != "none":
                count, share = reorder_ffn_units(model, cfg.reorder_ffn_units)
                reset_quant_steps(model)  # the quantizers follow the permuted weights
                logging.info(
                    f"FFN hidden units of {count} FFNs ordered by {cfg.reorder_ffn_units}: the first "
                    f"half now holds {100 * share:.1f}% of the importance (mean over FFNs)"
                )
        if cfg.bit_map:
            apply_bit_map(model, load_bit_map(Path(cfg.bit_map)), cfg.bit_map)
            logging.info(f"fixed per-layer bits from {cfg.bit_map}: average {average_bits(model):.3f}")
        if cfg.freeze_weights:
            if not (cfg.init_from and self.searching):
                raise ValueError(
                    "--freeze-weights is the search stage of a two-stage run: it needs --init-from (the "
                    "float model whose weights stay fixed) and mixed-precision candidates without --bit-map"
                )
            frozen = freeze_float_weights(model)
            logging.info(
                f"two-stage search: {frozen} float weight tensors frozen, bit logits and steps train"
            )
        self.teacher: Optional[nn.Module] = None
        if cfg.teacher_checkpoint:
            self.teacher = load_teacher(Path(cfg.teacher_checkpoint), cfg.float_weights)
            logging.info(f"frozen float teacher: {cfg.teacher_checkpoint}")

    def searching_now(self, model: nn.Module) -> bool:
        """Whether ``model``'s bit-widths are still being searched (not finalised yet)."""
        return self.searching and not is_finalised(model)

    def finalises_after(self, step: int) -> bool:
        """Whether the search ends after global batch ``step``: ``--mp-finalise-batch``, by
        default the end of the temperature ramp; a run that stops earlier finalises at its end."""
        return self.searching and step == (self.cfg.mp_finalise_batch or self.cfg.mp_anneal_batches)

    def annealing_at(self, step: int) -> Annealing:
        """The quantizers' annealing value of global batch ``step`` (passed into the model call)."""
        return self.annealing.at(step)

    def extra_loss(self, model: nn.Module) -> Tuple[Optional[torch.Tensor], Dict[str, float]]:
        """The bit-budget penalty (None without a target) and values to log."""
        if not (self.searching_now(model) and self.cfg.mp_target_bits > 0):
            return None, {}
        penalty = self.cfg.mp_penalty_scale * bit_penalty(model, self.cfg.mp_target_bits)
        with torch.no_grad():
            expected = expected_average_bits(model).item()
        return penalty, {"bit_penalty": penalty.item(), "expected_bits": expected}

    def finalise(self, models, exp_dir: Optional[Path]) -> None:
        """End the search: fix the bit map in every model and save it (once per run).

        The map comes from the first model's logits (argmax, or the argmax under the budget
        when ``--mp-target-bits`` is given, ``allinone.quant.mixed.finalise``); each model in
        ``models`` (the live one and the averaged copy) then runs it, so the batches left
        train the weights and steps at the final map (one stage, no retraining run), and
        validation, checkpoints and everything decoded or exported use it.
        """
        if not models or not self.searching_now(models[0]):
            return
        first, *others = models
        bits = finalise(first, self.cfg.mp_target_bits or None)
        for m in others:
            apply_bit_map(m, bits)
        avg = average_bits(first)
        if exp_dir is None:  # not the writing rank
            return
        save_bit_map(bits, exp_dir / "bit-map.json", avg)
        logging.info(
            f"mixed precision: average {avg:.3f} bits (target {self.cfg.mp_target_bits}); "
            f"per-layer map in {exp_dir / 'bit-map.json'}:\n{format_bit_map(bits)}"
        )
