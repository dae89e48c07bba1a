"""decode.py's flags as DecodeOptions, and the names of the files a run writes."""

import importlib.util
from pathlib import Path

import pytest

from allinone.decoding.recipe import DecodeOptions, decode_parser

DECODE_PY = Path(__file__).resolve().parents[2] / "egs/synth_digits/ASR/conformer_transducer/decode.py"


@pytest.fixture(scope="module")
def parser():
    spec = importlib.util.spec_from_file_location("decode_script", DECODE_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return decode_parser(module.DECODE_DEFAULTS)


def test_flag_defaults_are_the_options_defaults(parser):
    options = DecodeOptions.from_args(parser.parse_args(["--epoch", "3"]))
    assert options == DecodeOptions(epoch=3)


def test_lists_are_split(parser):
    args = parser.parse_args(["--epoch", "3", "--test-sets", "a,b", "--subnets", "d2-w1.0-b4,d6-w1.0-b8"])
    options = DecodeOptions.from_args(args)
    assert options.test_sets == ("a", "b") and options.subnets == ("d2-w1.0-b4", "d6-w1.0-b8")


@pytest.mark.parametrize(
    "flags, message",
    [
        ([], "--epoch is required"),
        (["--epoch", "1", "--decoding-method", "1best", "--blank-penalty", "1"], "not to 1best"),
        (["--epoch", "1", "--bn-calibration-batches", "-1"], ">= 0"),
        (["--packed-model", "m.aio", "--bn-calibration-batches", "2"], "not a packed file's"),
    ],
)
def test_conflicting_flags_are_refused(parser, flags, message):
    with pytest.raises(ValueError, match=message):
        DecodeOptions.from_args(parser.parse_args(flags))


def test_result_names(tmp_path):
    options = DecodeOptions(exp_dir=tmp_path, epoch=10, decoding_method="1best", ngram_lm_scale=0.5)
    assert options.key == "1best_beam_20_lm_scale_0.5"
    assert options.suffix == "epoch-10-avg-1-use-averaged-model"
    assert options.res_dir == tmp_path / "1best"
    calibrated = DecodeOptions(
        exp_dir=tmp_path, epoch=2, avg=2, use_averaged_model=False, bn_calibration_batches=5
    )
    assert calibrated.key == "modified_beam_search_beam_4"
    assert calibrated.suffix == "epoch-2-avg-2"
    assert calibrated.res_dir == tmp_path / "modified_beam_search-bn-calibrated"
    packed = DecodeOptions(exp_dir=tmp_path, epoch=7, packed_model=tmp_path / "m.aio", blank_penalty=1.5)
    assert packed.suffix == "packed-blank-penalty-1.5"
