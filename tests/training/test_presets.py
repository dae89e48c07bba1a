"""Method presets: each is a valid set of train.py flags, flags given beside it win, --model keys
merge, and every paper preset says which of its values are ours."""

from pathlib import Path

import pytest

from allinone.training.cli import config_from_args, recipe_defaults, train_parser
from allinone.training.presets import METHOD_PRESETS

REPO = Path(__file__).resolve().parents[2]
DEFAULTS = recipe_defaults(REPO / "egs/synth_digits/ASR/conformer_transducer/train.py")


def _config(*argv):
    argv = list(argv)
    return config_from_args(train_parser(DEFAULTS, argv=argv).parse_args(argv))


@pytest.mark.parametrize("name", list(METHOD_PRESETS))
def test_every_preset_builds_a_config_with_its_values(name):
    cfg = _config("--preset", name)
    sections = [cfg.run, cfg.data, cfg.optim, cfg.loss, cfg.nested, cfg.compression]
    for key, value in METHOD_PRESETS[name].values.items():
        if key == "model":
            for k, v in value.items():
                assert getattr(cfg.model, k) == v, (name, k)
        else:
            (section,) = [s for s in sections if hasattr(s, key)]
            assert getattr(section, key) == value, (name, key)
    if name.endswith("-paper"):
        assert METHOD_PRESETS[name].our_choices, f"{name} must say which values are not the paper's"


def test_flags_beside_a_preset_win_and_model_keys_merge():
    cfg = _config("--preset", "gq-paper", "--gq-alpha-start", "50", "--model", "num_layers=4")
    assert cfg.compression.gq_alpha_start == 50.0
    assert cfg.model.quantizer == "gq" and cfg.model.num_layers == 4
    assert cfg.model.d_model == DEFAULTS["model"]["d_model"]  # the recipe's other model values stay


def test_unfold_paper_distils_the_deepest_path_into_the_seed_only_from_step_0():
    cfg = _config("--preset", "unfold-paper")
    names = [s.name for s in cfg.grid]
    assert cfg.distill_students == ("d6-w1.0-b32",) and "d6-w1.0-b32" in names
    assert names[0] == "d12-w1.0-b32-urep"  # the deepest unfolded path, the teacher
    assert cfg.warmup is None and cfg.nested.distill_start_batch == 0
    tuned = _config("--preset", "unfold-tuned")
    assert tuned.warmup.name == "d6-w1.0-b32" and tuned.distill_students == ()


def test_an_unknown_preset_is_refused():
    with pytest.raises(SystemExit):
        _config("--preset", "nope")


def test_channel_copy_flags_are_checked():
    cfg = _config("--channel-copies", "telephone, microphone", "--channel-copy-prob", "0.3")
    assert cfg.data.channel_copy_kinds == ("telephone", "microphone") and cfg.data.channel_copy_prob == 0.3
    for flags, message in [
        (["--channel-copy-prob", "0.3", "--channel-copies", ""], "needs --channel-copies"),
        (["--channel-copies", "radio"], "unknown kind 'radio'"),
        (["--channel-copies", "telephone", "--channel-copy-prob", "1.5"], "within"),
        (["--channel-copies", "telephone", "--on-the-fly-feats", "true"], "stored features"),
    ]:
        with pytest.raises(ValueError, match=message):
            _config(*flags)
