"""The one place a model is assembled from its config and the subnets it serves."""

from dataclasses import replace
from typing import Dict, Sequence, Union

import torch
import torch.nn as nn

from allinone.nn.model import ModelConfig, Transducer
from allinone.quant.layers import reset_quant_steps
from allinone.subnet import SubnetConfig
from allinone.unfold import max_occurrences, statistics_keys


def build_model(
    model_config: Union[ModelConfig, dict],
    subnets: Sequence[SubnetConfig] = (),
    *,
    unfold_relax: bool = False,
    loss_backend: str = "torch",
) -> Transducer:
    """A ``Transducer`` for ``model_config``, with per-subnet state for ``subnets``.

    Args:
        model_config: the config, or its ``to_dict()`` (as checkpoints store it).
        subnets: the grid the model trains; when given, the config gets one BatchNorm
            statistics slot per key the grid needs and, with ``unfold_relax``, as many
            relaxation gain/bias sets as the most repeated block needs. Empty: the config
            is used as it is (a checkpoint's config already holds them).
        unfold_relax: give each repeat of an unfolded block its own output gain and bias.
        loss_backend: pruned RNN-T implementation ("torch", or "k2" when it imports).
    """
    cfg = ModelConfig.from_dict(model_config) if isinstance(model_config, dict) else model_config
    if subnets:
        cfg = replace(cfg, **grid_state(cfg.num_layers, subnets, unfold_relax, cfg.shared_norm_stats))
    return Transducer(cfg, loss_backend=loss_backend)


def grid_state(
    num_layers: int,
    subnets: Sequence[SubnetConfig],
    unfold_relax: bool = False,
    shared_norm_stats: bool = False,
) -> dict:
    """The ``ModelConfig`` fields a grid of subnets decides: statistics slots (none when every
    subnet shares one set) and relaxation repeats."""
    repeats = max(max_occurrences(s.schedule(num_layers)) for s in subnets) - 1
    return {
        "norm_subnets": () if shared_norm_stats else tuple(statistics_keys(subnets, num_layers)),
        "unfold_relax": repeats if unfold_relax else 0,
    }


# State-dict entries of quantizers: re-initialised from the float weights, never copied.
QUANTIZER_KEYS = (".steps.", ".centroids.", ".mp_logits", ".mp_bits")


@torch.no_grad()
def init_from_float(model: nn.Module, weights: Dict[str, torch.Tensor], source: str) -> None:
    """Copy float weights into ``model`` and initialise its quantizers from them.

    BatchNorm statistics of a single-system source fill every statistics slot of the
    target; quantizer state (steps, centroids, bit-width logits) is re-initialised.

    Raises:
        ValueError: naming ``source`` for a missing or differently shaped tensor.
    """
    target = model.state_dict()
    for name, t in target.items():
        if any(k in name for k in QUANTIZER_KEYS):
            continue
        if name not in weights:
            raise ValueError(f"{source} has no {name}: it is not a model of this architecture")
        src = weights[name]
        if src.shape != t.shape:
            if name.endswith(("running_mean", "running_var")) and src.shape[0] == 1:
                src = src.expand_as(t)
            else:
                raise ValueError(
                    f"{source}: {name} has shape {tuple(src.shape)}, this model {tuple(t.shape)}"
                )
        t.copy_(src)
    reset_quant_steps(model)
