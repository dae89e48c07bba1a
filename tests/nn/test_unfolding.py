"""Weight-tied unfolding: tying, gradient accumulation, per-occurrence state, accounting."""

import copy

import pytest
import torch

from allinone.deploy.accounting import encoder_footprint, subnet_footprint
from allinone.nn.conformer import ConformerEncoder
from allinone.nn.model import ModelConfig, Transducer
from allinone.subnet import SubnetConfig, SubnetError, parse_subnets
from allinone.unfold import (
    cycle_schedule,
    max_occurrences,
    occurrences,
    repeat_schedule,
    resolve_schedule,
    statistics_keys,
)

ARGS = dict(num_features=20, d_model=16, num_heads=2, ffn_dim=24, kernel_size=5, dropout=0.0)
UNFOLDED = "d6-w1.0-b32-urep"


def test_schedules_follow_their_order():
    assert repeat_schedule(3, 6) == (0, 0, 1, 1, 2, 2)
    assert repeat_schedule(6, 8) == (0, 0, 1, 1, 2, 3, 4, 5)
    assert repeat_schedule(3, 3) == (0, 1, 2)
    assert cycle_schedule(3, 7) == (0, 1, 2, 0, 1, 2, 0)
    assert occurrences((0, 0, 1, 0, 1)) == (0, 1, 0, 2, 1)
    assert max_occurrences(repeat_schedule(6, 12)) == 2
    assert resolve_schedule((2, 0, 2), 3, 3) == (2, 0, 2)
    with pytest.raises(ValueError, match="names blocks \\[3\\]"):
        resolve_schedule((0, 3), 3, 2)
    with pytest.raises(ValueError, match="unknown unfolding order"):
        resolve_schedule("zigzag", 3, 4)


def test_unfolded_names_round_trip_and_bad_schedules_fail():
    for name in ("d12-w1.0-b32-urep", "d8-w0.5-b4-ucyc", "d4-w1.0-b32-u0_0_1_1"):
        assert SubnetConfig.from_name(name).name == name
    assert SubnetConfig.from_name("d8-w1.0-b32-urep").schedule(6) == (0, 0, 1, 1, 2, 3, 4, 5)
    with pytest.raises(SubnetError, match="names blocks \\[7\\]"):
        SubnetConfig.from_name("d2-w1.0-b32-u0_7").resolved(6)
    with pytest.raises(SubnetError, match="has 3 layers for depth 2"):
        SubnetConfig.from_name("d2-w1.0-b32-u0_1_1")
    with pytest.raises(SubnetError, match="unknown unfolding order"):
        SubnetConfig.from_name("d8-w1.0-b32-uzig")
    assert [s.name for s in parse_subnets("unfold", 6)] == [
        "d12-w1.0-b32-urep",
        "d10-w1.0-b32-urep",
        "d8-w1.0-b32-urep",
        "d6-w1.0-b32",
    ]


def _inputs():
    torch.manual_seed(1)
    return torch.randn(2, 40, 20), torch.tensor([40, 31])


def test_unfolded_path_equals_a_plain_model_holding_copies_and_gradients_accumulate():
    """Brute force: a plain 6-layer encoder whose layer i is a copy of block schedule[i]."""
    torch.manual_seed(0)
    enc = ConformerEncoder(num_layers=3, **ARGS)
    subnet = SubnetConfig.from_name(UNFOLDED)
    schedule = subnet.schedule(3)
    plain = ConformerEncoder(num_layers=6, **ARGS)
    plain.embed, plain.pos_enc, plain.output_norm = (
        copy.deepcopy(m) for m in (enc.embed, enc.pos_enc, enc.output_norm)
    )
    plain.layers = torch.nn.ModuleList(copy.deepcopy(enc.layers[b]) for b in schedule)
    x, lens = _inputs()
    out, out_lens = enc(x, lens, subnet)
    ref, ref_lens = plain(x, lens)
    torch.testing.assert_close(out, ref)
    assert torch.equal(out_lens, ref_lens)

    out.square().mean().backward()
    ref.square().mean().backward()
    for block in range(3):
        copies = [i for i, b in enumerate(schedule) if b == block]
        for name, p in enc.layers[block].named_parameters():
            if p.grad is None:
                continue
            summed = sum(dict(plain.layers[i].named_parameters())[name].grad for i in copies)
            torch.testing.assert_close(p.grad, summed, msg=f"block {block} {name}")


def test_unfolded_layers_share_parameter_objects_and_count_unique_parameters():
    torch.manual_seed(0)
    enc = ConformerEncoder(num_layers=3, **ARGS)
    subnet = SubnetConfig.from_name(UNFOLDED)
    used = []
    hooks = [
        layer.register_forward_hook(lambda m, i, o: used.append(m)) for layer in enc.layers
    ]  # fmt: skip
    x, lens = _inputs()
    enc(x, lens, subnet)
    for h in hooks:
        h.remove()
    assert len(used) == 6 and len({id(m) for m in used}) == 3
    assert used[0] is used[1] and used[0].ff.linear1.weight is used[1].ff.linear1.weight
    # unique parameters of the 6-deep path = those of the 3-block seed
    unfolded = encoder_footprint(enc, subnet)
    seed = encoder_footprint(enc, SubnetConfig(depth=3))
    assert unfolded.params == seed.params
    extra_stats = 3 * 2 * 16 * 32  # one BatchNorm (mean, var) set per repeated block
    assert unfolded.stored_bits == seed.stored_bits + extra_stats


def test_one_repeat_schedule_equals_the_plain_model():
    torch.manual_seed(0)
    enc = ConformerEncoder(num_layers=3, **ARGS).eval()
    x, lens = _inputs()
    plain, _ = enc(x, lens, SubnetConfig(depth=3))
    for spec in ("d3-w1.0-b32-urep", "d3-w1.0-b32-ucyc", "d3-w1.0-b32-u0_1_2"):
        out, _ = enc(x, lens, SubnetConfig.from_name(spec))
        assert torch.equal(out, plain), spec


def test_each_occurrence_keeps_its_own_batchnorm_statistics():
    subnets = [SubnetConfig.from_name(UNFOLDED), SubnetConfig(depth=3)]
    keys = statistics_keys(subnets, 3)
    assert keys == [UNFOLDED, UNFOLDED + "@1", "d3-w1.0-b32"]
    torch.manual_seed(0)
    enc = ConformerEncoder(num_layers=3, norm_subnets=keys, **ARGS).train()
    x, lens = _inputs()
    enc(x, lens, subnets[0])
    stats = enc.layers[0].conv.norm.running_mean
    first, second, seed = (enc.norm_slots[k] for k in keys)
    assert not torch.equal(stats[first], stats[second])  # the two uses saw different inputs
    assert torch.equal(stats[seed], torch.zeros(16))  # the seed slot is untouched
    with pytest.raises(SubnetError, match="no BatchNorm statistics"):
        enc(x, lens, SubnetConfig.from_name("d4-w1.0-b32-urep"))


def test_relaxation_starts_tied_and_is_counted():
    torch.manual_seed(0)
    tied = ConformerEncoder(num_layers=3, **ARGS).eval()
    relaxed = ConformerEncoder(num_layers=3, unfold_relax=1, **ARGS).eval()
    relaxed.load_state_dict(tied.state_dict(), strict=False)
    subnet = SubnetConfig.from_name(UNFOLDED)
    x, lens = _inputs()
    torch.testing.assert_close(relaxed(x, lens, subnet)[0], tied(x, lens, subnet)[0])
    gap = encoder_footprint(relaxed, subnet).params - encoder_footprint(tied, subnet).params
    assert gap == 3 * 2 * 16  # a gain and a bias per repeated block
    with torch.no_grad():
        relaxed.unfold_gain[1, 0].fill_(2.0)
    assert not torch.allclose(relaxed(x, lens, subnet)[0], tied(x, lens, subnet)[0])
    torch.testing.assert_close(
        relaxed(x, lens, SubnetConfig(depth=3))[0], tied(x, lens, SubnetConfig(depth=3))[0]
    )  # the seed never uses a relaxation
    with pytest.raises(SubnetError, match="at most 2 uses"):
        relaxed(x, lens, SubnetConfig.from_name("d9-w1.0-b32-urep"))


def test_model_footprint_of_an_unfolded_subnet_grows_only_by_its_per_occurrence_state():
    grid = parse_subnets("unfold", 3)
    cfg = ModelConfig(vocab_size=10, num_layers=3, norm_subnets=tuple(statistics_keys(grid, 3)), d_model=16)
    model = Transducer(cfg)
    seed = subnet_footprint(model, grid[-1])
    for s in grid[:-1]:  # depths 6, 5, 4 of 3 blocks: every stored block keeps one repeat's state
        fp = subnet_footprint(model, s)
        assert fp.params == seed.params
        assert fp.stored_bits - seed.stored_bits == 3 * 2 * 16 * 32
