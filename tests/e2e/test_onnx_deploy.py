"""export-onnx.py and onnx_decode.py on a trained tiny model: sherpa-onnx recognises what torch does."""

import subprocess
import sys

import pytest
import torch

from allinone.data.datamodule import load_split
from allinone.data.tokenizer import BpeTokenizer
from allinone.decoding.runner import recognize
from allinone.decoding.transcribe import fbank_features
from allinone.deploy.export import load_packed_model
from allinone.utils.scoring import read_recogs
from tests.e2e.conftest import PREFIX
from tests.e2e.test_all_in_one import GRID
from tests.e2e.test_recipe import RECIPE, _env, run, train_cmd

SUBNET = "d1-w0.5-b4"  # depth- and width-reduced, 4-bit
# An undertrained tiny model emits mostly blanks; a blank penalty makes every search emit
# tokens, so equal hypotheses say something about the numerics.
PENALTY = "3"
TEST_SETS = "test,dev"


@pytest.fixture(scope="module")
def exported(tiny_corpus, tmp_path_factory):
    root, lang = tiny_corpus
    exp = tmp_path_factory.mktemp("onnx") / "exp"
    run(train_cmd(root, lang, exp, "--subnets", ",".join(GRID), "--use-ctc", "true"))
    out = run([sys.executable, str(RECIPE / "export-onnx.py"), "--epoch", "2", "--exp-dir", str(exp),
               "--subnet", SUBNET, "--bpe-model", str(lang / "bpe.model")])  # fmt: skip
    assert "max |ONNX - torch|" in out.stdout
    return root, lang, exp, exp / "onnx"


def _decode_cmd(root, lang, onnx_dir, *extra):
    return [sys.executable, str(RECIPE / "onnx_decode.py"), "--onnx-dir", str(onnx_dir), "--subnet", SUBNET,
            "--bpe-model", str(lang / "bpe.model"), "--manifest-dir", str(root / "fbank"),
            "--cuts-prefix", PREFIX, "--test-sets", TEST_SETS, *extra]  # fmt: skip


def _hyps(path):
    return {cut: hyp for cut, _, hyp in read_recogs(path)}


@torch.no_grad()
def _torch_on_audio(root, lang, aio, method):
    """Hypotheses of the packed subnet on fbank computed from each cut's audio, as pretrained.py does."""
    model, run_subnet, _ = load_packed_model(aio)
    tokenizer = BpeTokenizer(lang / "bpe.model")
    out = {}
    for split in TEST_SETS.split(","):
        for cut in load_split(root / "fbank", PREFIX, split):
            feats = fbank_features(cut.load_audio()[0], cut.sampling_rate)
            (words,) = recognize(model, feats[None], torch.tensor([feats.size(0)]), tokenizer, method,
                                 subnet=run_subnet, blank_penalty=float(PENALTY))  # fmt: skip
            out[cut.id] = words
    return out


@pytest.mark.parametrize("method", ["greedy_search", "modified_beam_search"])
def test_sherpa_onnx_gives_torchs_hypotheses(exported, method):
    root, lang, exp, onnx_dir = exported
    run(_decode_cmd(root, lang, onnx_dir, "--engine", "sherpa-onnx", "--decoding-method", method,
                    "--blank-penalty", PENALTY))  # fmt: skip
    want = _torch_on_audio(root, lang, onnx_dir / f"{SUBNET}.aio", method)
    got = {}
    for split in TEST_SETS.split(","):
        (path,) = (onnx_dir / f"sherpa-onnx-{method}").glob(
            f"recogs-{split}-*-{SUBNET}-fp32-blank-penalty-3.txt"
        )
        got.update(_hyps(path))
    assert sum(len(h) for h in want.values()) > 0  # not a comparison of empty outputs
    assert got == want


def test_onnxruntime_engine_equals_decode_py_on_the_stored_features(exported):
    root, lang, exp, onnx_dir = exported
    common = [
        "--bpe-model",
        str(lang / "bpe.model"),
        "--manifest-dir",
        str(root / "fbank"),
        "--cuts-prefix",
        PREFIX,
        "--test-sets",
        TEST_SETS,
        "--decoding-method",
        "greedy_search",
        "--blank-penalty",
        PENALTY,
    ]
    run([sys.executable, str(RECIPE / "decode.py"), "--exp-dir", str(exp), "--packed-model",
         str(onnx_dir / f"{SUBNET}.aio"), *common])  # fmt: skip
    for variant in ("fp32", "int8", "int8-codes"):
        run(_decode_cmd(root, lang, onnx_dir, "--engine", "onnxruntime", "--variant", variant,
                        "--decoding-method", "greedy_search", "--blank-penalty", PENALTY))  # fmt: skip
    for split in TEST_SETS.split(","):
        (torch_file,) = (exp / "greedy_search").glob(f"recogs-{split}-greedy_search-{SUBNET}-packed*.txt")
        want = _hyps(torch_file)
        assert sum(len(h) for h in want.values()) > 0
        res = onnx_dir / "onnxruntime-greedy_search"
        assert _hyps(next(res.glob(f"recogs-{split}-*-{SUBNET}-fp32-*.txt"))) == want
        assert set(_hyps(next(res.glob(f"recogs-{split}-*-{SUBNET}-int8-*.txt")))) == set(want)
    # CTC head through sherpa-onnx's zipformer_ctc loader
    run(
        _decode_cmd(root, lang, onnx_dir, "--engine", "sherpa-onnx", "--decoding-method", "ctc-greedy-search")
    )
    assert list((onnx_dir / "sherpa-onnx-ctc-greedy-search").glob(f"recogs-test-*-{SUBNET}-fp32.txt"))


def test_damaged_files_are_named_not_crashed_on(exported, tmp_path):
    root, lang, exp, onnx_dir = exported
    broken = tmp_path / "onnx"
    broken.mkdir()
    for f in onnx_dir.glob(f"*-{SUBNET}.onnx"):
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "tokens.txt").write_bytes((onnx_dir / "tokens.txt").read_bytes())
    enc = broken / f"encoder-{SUBNET}.onnx"
    enc.write_bytes(enc.read_bytes()[:1000])
    out = subprocess.run(
        _decode_cmd(root, lang, broken), capture_output=True, text=True, env=_env(), timeout=300
    )
    assert out.returncode == 1 and f"{enc}: not a loadable ONNX model" in out.stderr
    aio = tmp_path / "cut.aio"
    aio.write_bytes((onnx_dir / f"{SUBNET}.aio").read_bytes()[:-100])
    cmd = [sys.executable, str(RECIPE / "export-onnx.py"), "--packed-model", str(aio),
           "--out-dir", str(broken), "--bpe-model", str(lang / "bpe.model")]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=300)
    assert out.returncode == 1 and str(aio) in out.stderr and "Traceback" not in out.stderr


def test_pretrained_py_transcribes_with_the_onnx_files(exported):
    root, lang, exp, onnx_dir = exported
    want = _torch_on_audio(root, lang, onnx_dir / f"{SUBNET}.aio", "greedy_search")
    cuts = sorted(want)[:3]
    wavs = [root / "wav" / f"{c.rsplit('-', 1)[0]}.wav" for c in cuts]  # cut "test-000-0" of "test-000"
    cmd = [sys.executable, str(RECIPE / "pretrained.py"), "--onnx-dir", str(onnx_dir),
           "--onnx-subnet", SUBNET, "--bpe-model", str(lang / "bpe.model"),
           "--decoding-method", "greedy_search",
           "--blank-penalty", PENALTY, *map(str, wavs)]  # fmt: skip
    out = run(cmd)
    lines = dict(line.split(": ", 1) for line in out.stdout.splitlines())
    assert [lines[str(w)].split() for w in wavs] == [want[c] for c in cuts]
