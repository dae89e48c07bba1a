"""Where a transducer training step spends its time (CPU wall clock)."""

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Dict, List

import torch

from allinone.nn.model import Transducer, pad_labels


@dataclass
class StepTimes:
    """Accumulated seconds per part of the step, and the audio they covered."""

    audio_seconds: float = 0.0
    parts: Dict[str, float] = field(default_factory=dict)

    @contextmanager
    def timed(self, name: str):
        t0 = time.perf_counter()
        yield
        self.parts[name] = self.parts.get(name, 0.0) + time.perf_counter() - t0


def profile_steps(
    model: Transducer,
    optimizer: torch.optim.Optimizer,
    batches: List[tuple],
    prune_range: int = 5,
    lm_scale: float = 0.25,
    am_scale: float = 0.0,
) -> StepTimes:
    """Time full training steps, then the transducer loss alone on the same batches.

    Args:
        model: the model, in train mode.
        optimizer: its optimizer (stepped, so pass a throw-away copy).
        batches: ``(features (N, T, F), feature_lens (N,), labels)`` tuples.
    Returns:
        ``StepTimes`` with parts
        ``step``: forward + backward + optimizer step;
        ``loss_subgraph``: decoder, joiner and loss functions, forward + backward, on a
        detached encoder output;
        ``loss_functions``: the k2-style functions alone (smoothed simple loss with
        occupation gradients and prune ranges, then the pruned loss on fixed joiner
        logits), forward + backward, no network layers.
    """
    out = StepTimes()
    rnnt = model._rnnt
    blank = model.config.blank_id
    for features, feature_lens, labels in batches:
        out.audio_seconds += float(feature_lens.sum()) * 0.01

        with out.timed("step"):
            losses = model(features, feature_lens, labels, prune_range, am_scale, lm_scale)
            optimizer.zero_grad()
            (0.5 * losses["simple"] + losses["pruned"] + 0.2 * losses.get("ctc", 0.0)).sum().backward()
            optimizer.step()

        with torch.no_grad():
            enc, enc_lens = model.encode(features, feature_lens)
        enc.requires_grad_(True)
        with out.timed("loss_subgraph"):
            simple, pruned = model.transducer_loss(enc, enc_lens, labels, prune_range, am_scale, lm_scale)
            (0.5 * simple + pruned).sum().backward()

        # Inputs of the loss functions, computed once and detached from the network.
        with torch.no_grad():
            dec = model.decoder(pad_labels([[blank] + y for y in labels], blank), need_pad=True)
            lm = model.simple_lm_proj(dec).requires_grad_(True)
            am = model.simple_am_proj(enc).requires_grad_(True)
        symbols = pad_labels(labels, blank)
        boundary = torch.zeros(len(labels), 4, dtype=torch.long)
        boundary[:, 2] = torch.tensor([len(y) for y in labels])
        boundary[:, 3] = enc_lens

        with out.timed("loss_functions"):
            simple, (px_grad, py_grad) = rnnt.rnnt_loss_smoothed(
                lm=lm,
                am=am,
                symbols=symbols,
                termination_symbol=blank,
                lm_only_scale=lm_scale,
                am_only_scale=am_scale,
                boundary=boundary,
                reduction="none",
                return_grad=True,
            )
            ranges = rnnt.get_rnnt_prune_ranges(px_grad, py_grad, boundary, prune_range)
            (0.5 * simple).sum().backward()

        with torch.no_grad():
            am_p, lm_p = rnnt.do_rnnt_pruning(
                model.joiner.encoder_proj(enc), model.joiner.decoder_proj(dec), ranges
            )
            logits = model.joiner(am_p, lm_p, project_input=False).requires_grad_(True)
        with out.timed("loss_functions"):
            rnnt.rnnt_loss_pruned(logits, symbols, ranges, blank, boundary, reduction="none").sum().backward()
    return out
