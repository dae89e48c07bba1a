import pytest

from allinone.subnet import SubnetConfig, SubnetError, parse_subnets, preset_grids, select_subnets


@pytest.mark.parametrize(
    "name",
    [
        "d12-w1.0-b32",
        "d8-w0.5-b4",
        "d6-w0.5_0.5_1.0_1.0_0.25_1.0-b4_attn8",
        "d4-w1.0-b2_conv8_ffn1",
        "dall-w1.0-b32",
    ],
)
def test_names_round_trip(name):
    cfg = SubnetConfig.from_name(name)
    assert cfg.name == name
    assert SubnetConfig.from_name(cfg.name) == cfg


def test_queries():
    cfg = SubnetConfig.from_name("d3-w0.5_1.0_0.25-b4_attn8")
    assert [cfg.layer_ratio(i) for i in range(3)] == [0.5, 1.0, 0.25]
    assert cfg.bits_for("attn") == 8 and cfg.bits_for("ffn") == 4
    assert not cfg.is_float and SubnetConfig(depth=2).is_float


@pytest.mark.parametrize(
    "bad, message",
    [
        ("d0-w1.0-b32", "depth must be >= 1"),
        ("d6-w1.5-b32", "must be in \\(0, 1\\]"),
        ("d6-w0.0-b32", "must be in \\(0, 1\\]"),
        ("d6-w1.0-b7", "unsupported bit-width 7"),
        ("d6-w1.0-b4_mlp8", "unknown weight class 'mlp'"),
        ("d2-w0.5_0.5_0.5-b4", "3 per-layer FFN widths given for depth 2"),
        ("d6-x1", "unknown field"),
        ("d6-d4", "repeated"),
        ("dsix", "cannot parse"),
    ],
)
def test_bad_names_are_rejected(bad, message):
    with pytest.raises(SubnetError, match=message):
        SubnetConfig.from_name(bad)


def test_grid_checked_against_the_model_before_training():
    assert [s.name for s in parse_subnets("d6-w1.0-b32,d3-w0.5-b4", 6)] == ["d6-w1.0-b32", "d3-w0.5-b4"]
    with pytest.raises(SubnetError, match="needs 8 layers, the model has 6"):
        parse_subnets("d6-w1.0-b32,d8-w1.0-b32", 6)
    with pytest.raises(SubnetError, match="listed twice"):
        parse_subnets("d6-w1.0-b4,d6-w1.0-b4", 6)


def test_default_grid_spans_every_axis():
    grid = preset_grids(12)["default"]
    assert len(grid) >= 8
    assert {s.depth for s in grid} == {12, 8, 6}
    assert {s.layer_ratio(0) for s in grid} == {1.0, 0.5}
    assert {s.bits for s in grid} == {32, 8, 4, 2}


def test_unknown_subnet_lists_the_valid_ones():
    available = parse_subnets("d6-w1.0-b32,d3-w0.5-b4", 6)
    assert select_subnets(["all"], available) == available
    with pytest.raises(SubnetError, match="d6-w1.0-b32, d3-w0.5-b4"):
        select_subnets(["d5-w1.0-b32"], available)
