"""Where a transducer training step spends its time (CPU wall clock)."""

import time
from dataclasses import dataclass, field
from typing import Dict, List

import torch

from allinone.nn.model import Transducer, pad_labels


@dataclass
class StepTimes:
    """Accumulated seconds per part of the step, and the audio they covered."""

    audio_seconds: float = 0.0
    parts: Dict[str, float] = field(default_factory=dict)

    def add(self, name: str, seconds: float) -> None:
        self.parts[name] = self.parts.get(name, 0.0) + seconds


def _time(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def profile_steps(
    model: Transducer,
    optimizer: torch.optim.Optimizer,
    batches: List[tuple],
    prune_range: int = 5,
    lm_scale: float = 0.25,
    am_scale: float = 0.0,
) -> StepTimes:
    """Time full training steps, then the transducer loss functions alone on the same batches.

    Args:
        model: the model, in train mode.
        optimizer: its optimizer (stepped, so pass a throw-away copy).
        batches: ``(features (N, T, F), feature_lens (N,), labels)`` tuples.
    Returns:
        ``StepTimes`` with parts ``step`` (forward + backward + optimizer step),
        ``loss_functions`` (k2-style functions only: smoothed simple loss with occupation
        gradients and prune ranges, then the pruned loss on fixed joiner logits; forward +
        backward, no network layers) and
        ``loss_subgraph`` (decoder, joiner and loss functions: forward + backward, on
        detached encoder output).
    """
    out = StepTimes()
    rnnt = model._rnnt
    for features, feature_lens, labels in batches:
        out.audio_seconds += float(feature_lens.sum()) * 0.01

        def step():
            simple, pruned = model(features, feature_lens, labels, prune_range, am_scale, lm_scale)
            loss = (0.5 * simple + pruned).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        out.add("step", _time(step)[1])

        with torch.no_grad():
            enc, enc_lens = model.encode(features, feature_lens)
        enc = enc.detach().requires_grad_(True)

        def subgraph():
            simple, pruned = model.transducer_loss(enc, enc_lens, labels, prune_range, am_scale, lm_scale)
            (0.5 * simple + pruned).sum().backward()

        out.add("loss_subgraph", _time(subgraph)[1])

        # Inputs of the loss functions, computed once and detached.
        blank = model.config.blank_id
        with torch.no_grad():
            dec = model.decoder(pad_labels([[blank] + y for y in labels], blank), need_pad=True)
            lm = model.simple_lm_proj(dec)
            am = model.simple_am_proj(enc)
            enc_proj = model.joiner.encoder_proj(enc)
            dec_proj = model.joiner.decoder_proj(dec)
        symbols = pad_labels(labels, blank)
        boundary = torch.zeros(len(labels), 4, dtype=torch.long)
        boundary[:, 2] = torch.tensor([len(y) for y in labels])
        boundary[:, 3] = enc_lens
        lm.requires_grad_(True)
        am.requires_grad_(True)

        def simple_and_ranges():
            simple, (px_grad, py_grad) = rnnt.rnnt_loss_smoothed(
                lm=lm, am=am, symbols=symbols, termination_symbol=blank, lm_only_scale=lm_scale,
                am_only_scale=am_scale, boundary=boundary, reduction="none", return_grad=True,
            )
            ranges = rnnt.get_rnnt_prune_ranges(px_grad, py_grad, boundary, prune_range)
            (0.5 * simple).sum().backward()
            return ranges

        ranges, t_simple = _time(simple_and_ranges)
        with torch.no_grad():
            am_p, lm_p = rnnt.do_rnnt_pruning(enc_proj, dec_proj, ranges)
            logits = model.joiner(am_p, lm_p, project_input=False)
        logits.requires_grad_(True)

        def pruned_loss():
            rnnt.rnnt_loss_pruned(logits, symbols, ranges, blank, boundary, reduction="none").sum().backward()

        t_pruned = _time(pruned_loss)[1]
        out.add("loss_functions", t_simple + t_pruned)
    return out
