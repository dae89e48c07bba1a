"""pretrained.py: any audio file (rate, channels, format) transcribed like decode.py transcribes
the same audio; an unreadable file is named and the others are still transcribed."""

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from allinone.decoding.transcribe import AudioReadError, read_audio
from allinone.utils.scoring import read_recogs
from tests.e2e.test_all_in_one import decode_cmd, one_epoch
from tests.e2e.test_recipe import RECIPE, _env, run, train_cmd


def _resampled(samples: np.ndarray, rate: int) -> np.ndarray:
    t_old = np.arange(samples.size) / 16000
    t_new = np.arange(int(samples.size * rate / 16000)) / rate
    return np.interp(t_new, t_old, samples).astype(np.float32)


def test_stereo_44k_is_downmixed_and_resampled_to_16k(tmp_path):
    t = np.arange(44100) / 44100
    left = 0.3 * np.sin(2 * np.pi * 440 * t)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, -left + 0.1], axis=1), 44100)
    out = read_audio(path, 16000)
    assert out.dtype == np.float32 and out.shape == (16000,)
    np.testing.assert_allclose(out[100:-100], 0.05, atol=1e-3)  # the mean of the two channels


@pytest.mark.parametrize("content", [b"", b"not audio at all, just text"])
def test_unreadable_files_are_named(tmp_path, content):
    path = tmp_path / "broken.wav"
    path.write_bytes(content)
    with pytest.raises(AudioReadError, match="broken.wav"):
        read_audio(path, 16000)
    with pytest.raises(AudioReadError, match="no such file"):
        read_audio(tmp_path / "absent.flac", 16000)


def test_pretrained_transcribes_any_rate_like_decode_and_skips_a_bad_file(tiny_corpus, tmp_path):
    root, lang = tiny_corpus
    exp = tmp_path / "exp"
    run(one_epoch(train_cmd(root, lang, exp)))
    run(decode_cmd(root, lang, exp))
    (recogs,) = (exp / "greedy_search").glob("recogs-test-*.txt")
    expected = {cut: hyp for cut, _, hyp in read_recogs(recogs)}
    cut = sorted(expected)[0]
    original = root / "wav" / f"{cut.rsplit('-', 1)[0]}.wav"  # cut "test-000-0" of recording "test-000"
    samples, rate = sf.read(original, dtype="float32")
    assert rate == 16000
    files = [original]
    for name, r, channels in (("x8k.wav", 8000, 1), ("x22k.flac", 22050, 1), ("x44k.wav", 44100, 2)):
        audio = _resampled(samples, r)
        sf.write(tmp_path / name, np.stack([audio] * channels, axis=1) if channels > 1 else audio, r)
        files.append(tmp_path / name)
    bad = tmp_path / "bad.wav"
    bad.write_text("nothing")
    cmd = [sys.executable, str(RECIPE / "pretrained.py"), "--epoch", "1", "--exp-dir", str(exp),
           "--bpe-model", str(lang / "bpe.model"), "--decoding-method", "greedy_search",
           str(files[0]), str(bad), *map(str, files[1:])]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=300)
    assert out.returncode == 1, out.stderr[-2000:]
    assert f"{bad}: cannot read audio" in out.stderr
    lines = dict(line.split(": ", 1) if ": " in line else (line[:-1], "") for line in out.stdout.splitlines())
    assert list(lines) == [str(f) for f in files]  # one line per readable file, in order
    # the 16 kHz file itself: exactly decode.py's hypothesis for that cut (same features, same search)
    assert lines[str(original)].split() == expected[cut]
