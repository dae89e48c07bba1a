"""Optimizer groups: no decay reaches a quantizer parameter or a bit-width logit by default,
every trainable parameter is in exactly one group, and the old grouping stays available."""

from dataclasses import replace

import pytest
import torch

from allinone.nn.build import build_model
from allinone.nn.model import ModelConfig
from allinone.subnet import SubnetConfig
from allinone.training.param_groups import parameter_groups

CFG = ModelConfig(
    vocab_size=10, num_features=20, d_model=16, num_layers=2, num_heads=2, ffn_dim=24, kernel_size=3,
    decoder_dim=16, joiner_dim=16, dropout=0.0,
)  # fmt: skip


def _model(**changes):
    grid = [SubnetConfig.from_name(n) for n in ("d2-w1.0-b32", "d1-w0.5-b4")]
    if changes.get("mp_candidates"):
        grid = [SubnetConfig.from_name("d2-w1.0-bmix")]
    return build_model(replace(CFG, **changes), grid)


def _names_by_group(model, groups):
    ids = {id(p): n for n, p in model.named_parameters()}
    return {g["name"]: [ids[id(p)] for p in g["params"]] for g in groups}


@pytest.mark.parametrize(
    "changes, quantizer_suffix",
    [({}, ".steps.b4"), ({"quantizer": "gq"}, ".centroids.b4"), ({"mp_candidates": "2,4,8"}, ".steps.b2")],
)
def test_quantizer_parameters_and_logits_are_never_decayed(changes, quantizer_suffix):
    model = _model(**changes)
    groups = parameter_groups(model, weight_decay=1e-3, quantizer_weight_decay=0.0, mp_lr_scale=50.0)
    names = _names_by_group(model, groups)
    all_names = [n for ns in names.values() for n in ns]
    assert sorted(all_names) == sorted(n for n, p in model.named_parameters() if p.requires_grad)
    for g in groups:
        if g["weight_decay"] > 0:
            decayed = names[g["name"]]
            assert not any(".steps." in n or ".centroids." in n or n.endswith(".mp_logits") for n in decayed)
    assert any(n.endswith(quantizer_suffix) for n in names["quantizer"])
    assert {g["name"]: g["lr_scale"] for g in groups}.get("bit_logits", 50.0) == 50.0
    if changes.get("mp_candidates"):
        assert names["bit_logits"] and all(n.endswith(".mp_logits") for n in names["bit_logits"])


def test_equal_decay_keeps_the_old_two_group_layout_so_old_optimizer_states_load():
    model = _model()
    groups = parameter_groups(model, weight_decay=1e-3, quantizer_weight_decay=1e-3)
    assert [g["name"] for g in groups] == ["weights"]
    old = torch.optim.AdamW([{"params": list(model.parameters())}], lr=1e-3)
    new = torch.optim.AdamW(groups, lr=1e-3)
    new.load_state_dict(old.state_dict())  # raises if the grouping differs


def test_adamw_with_the_groups_leaves_an_lsq_step_alone_when_its_gradient_is_zero():
    # Decoupled decay would shrink the step even without gradient; the quantizer group has none.
    model = _model()
    groups = parameter_groups(model, weight_decay=0.1)
    opt = torch.optim.AdamW(groups, lr=0.1)
    step = next(p for n, p in model.named_parameters() if n.endswith(".steps.b4"))
    weight = next(p for n, p in model.named_parameters() if n.endswith("ffn1.w1.weight") or ".weight" in n)
    before_step, before_weight = step.detach().clone(), weight.detach().clone()
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    assert torch.equal(step, before_step)
    assert not torch.equal(weight, before_weight)
