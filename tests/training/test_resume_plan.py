"""Checkpoints written before a nested-plan option existed still resume with the same flags,
and a changed option still refuses the resume."""

import pytest

from allinone.subnet import SubnetConfig
from allinone.training.checkpointing import complete_saved_plan, plan_signature
from allinone.training.config import CompressionOptions
from allinone.training.nested import NestedPlan

PLAIN = {
    "subnets": ["d6-w1.0-b32"],
    "policy": "all",
    "sandwich_k": 2,
    "loss_weights": [],
    "distill": False,
    "distill_scale": 1.0,
    "student_label_scale": 0.5,
}
# Plans as earlier versions saved them: before warm-up and compression existed, and
# before --mp-finalise-batch / --reorder-ffn-units (the compression dict without them).
OLDEST = dict(PLAIN)
BEFORE_REORDER = {
    **PLAIN,
    "distill_start": 0,
    "warmup": [],
    "warmup_batches": 0,
    "mp_lr_scale": 50.0,
    "compression": {
        k: v
        for k, v in vars(CompressionOptions()).items()
        if k not in ("reorder_ffn_units", "mp_finalise_batch", "float_weights")
    },
}


def signature(plan, **compression):
    """The resume signature of a run of ``plan`` with today's options."""
    return plan_signature(plan, CompressionOptions(**compression), mp_lr_scale=50.0)


def signature_of_an_unchanged_run(**compression):
    """The signature of a plain run of the full float model."""
    return signature(
        NestedPlan(subnets=(SubnetConfig.from_name("d6-w1.0-b32"),), policy="all"), **compression
    )


@pytest.mark.parametrize("saved", [OLDEST, BEFORE_REORDER], ids=["oldest", "before-reorder"])
def test_an_older_plan_completes_to_the_signature_of_the_same_run_today(saved):
    assert complete_saved_plan(saved) == signature_of_an_unchanged_run()


def test_a_changed_option_still_differs_after_completion():
    assert complete_saved_plan(BEFORE_REORDER) != signature_of_an_unchanged_run(
        reorder_ffn_units="weight-norm"
    )
    drawn = NestedPlan(
        subnets=tuple(
            SubnetConfig.from_name(n) for n in ("d6-w1.0-b32", "d6-w1.0-b4", "d6-w1.0-b2", "d3-w0.5-b2")
        ),
        policy="sandwich",
        sandwich_k=1,
    )
    with_weights = NestedPlan(**{**vars(drawn), "draw_weights": (("d6-w1.0-b2", 2.0),)})
    assert signature(drawn) == complete_saved_plan({**signature(drawn), "draw_weights": []})
    assert signature(with_weights) != complete_saved_plan(
        {k: v for k, v in signature(drawn).items() if k != "draw_weights"}
    )
    saved = {**BEFORE_REORDER, "compression": {**BEFORE_REORDER["compression"], "init_from": "a.pt"}}
    assert complete_saved_plan(saved) != signature_of_an_unchanged_run()
