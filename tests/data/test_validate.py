"""Manifest validation: missing audio, wrong sample rate and empty transcripts are
reported with the recording id and the file; compute_fbank.py refuses such input."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from lhotse import AudioSource, Recording, RecordingSet, SupervisionSegment, SupervisionSet

from allinone.data.validate import ManifestError, check_recording, sphere_sampling_rate, validate_manifests

REPO = Path(__file__).resolve().parents[2]


def _wav(path: Path, sr: int = 16000, seconds: float = 0.5) -> Path:
    t = np.arange(int(sr * seconds)) / sr
    sf.write(path, 0.2 * np.sin(2 * np.pi * 440 * t), sr, subtype="PCM_16")
    return path


def _sup(rec: Recording, text="ONE TWO") -> SupervisionSegment:
    return SupervisionSegment(id=rec.id, recording_id=rec.id, start=0.0, duration=rec.duration, text=text)


def test_valid_manifests_pass(tmp_path):
    rec = Recording.from_file(_wav(tmp_path / "a.wav"), recording_id="utt-a")
    validate_manifests(RecordingSet.from_recordings([rec]), SupervisionSet.from_segments([_sup(rec)]))


def test_missing_file_names_recording_and_path(tmp_path):
    path = _wav(tmp_path / "gone.wav")
    rec = Recording.from_file(path, recording_id="utt-gone")
    path.unlink()
    with pytest.raises(ManifestError) as e:
        validate_manifests([rec], [_sup(rec)])
    msg = str(e.value)
    assert "utt-gone" in msg and str(path) in msg and "missing" in msg


def test_wrong_sample_rate_names_recording_and_path(tmp_path):
    path = _wav(tmp_path / "narrow.wav", sr=8000)
    rec = Recording.from_file(path, recording_id="utt-8k")
    with pytest.raises(ManifestError) as e:
        validate_manifests([rec], [_sup(rec)])
    msg = str(e.value)
    assert "utt-8k" in msg and str(path) in msg and "8000" in msg and "16000" in msg


def test_manifest_rate_disagreeing_with_file_is_caught(tmp_path):
    # The manifest claims 16 kHz but the file on disk is 22.05 kHz.
    path = _wav(tmp_path / "liar.wav", sr=22050)
    rec = Recording(
        id="utt-liar",
        sources=[AudioSource(type="file", channels=[0], source=str(path))],
        sampling_rate=16000,
        num_samples=8000,
        duration=0.5,
    )
    problems = check_recording(rec)
    assert len(problems) == 1 and "utt-liar" in problems[0] and "22050" in problems[0]


@pytest.mark.parametrize("text", ["", "   ", None])
def test_empty_transcript_names_recording_and_path(tmp_path, text):
    path = _wav(tmp_path / "quiet.wav")
    rec = Recording.from_file(path, recording_id="utt-empty")
    with pytest.raises(ManifestError) as e:
        validate_manifests([rec], [_sup(rec, text=text)])
    msg = str(e.value)
    assert "utt-empty" in msg and str(path) in msg and "empty transcript" in msg


def test_all_problems_reported_together(tmp_path):
    good = Recording.from_file(_wav(tmp_path / "good.wav"), recording_id="good")
    bad_sr = Recording.from_file(_wav(tmp_path / "bad.wav", sr=8000), recording_id="bad-sr")
    orphan = SupervisionSegment(id="orphan", recording_id="nowhere", start=0, duration=1, text="OH")
    with pytest.raises(ManifestError) as e:
        validate_manifests([good, bad_sr], [_sup(good, text=""), _sup(bad_sr), orphan])
    assert len(e.value.problems) == 3
    assert "nowhere" in str(e.value)


def _load_compute_fbank():
    spec = importlib.util.spec_from_file_location("compute_fbank", REPO / "local" / "compute_fbank.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_split(manifest_dir: Path, recs, sups, split="dev", prefix="toy"):
    manifest_dir.mkdir(parents=True, exist_ok=True)
    RecordingSet.from_recordings(recs).to_file(manifest_dir / f"{prefix}_recordings_{split}.jsonl.gz")
    SupervisionSet.from_segments(sups).to_file(manifest_dir / f"{prefix}_supervisions_{split}.jsonl.gz")


def test_compute_fbank_rejects_bad_manifest_before_extracting(tmp_path):
    cf = _load_compute_fbank()
    path = _wav(tmp_path / "x.wav")
    rec = Recording.from_file(path, recording_id="toy-x")
    path.unlink()
    _write_split(tmp_path / "manifests", [rec], [_sup(rec)])
    out = tmp_path / "fbank"
    argv = ["--manifest-dir", str(tmp_path / "manifests"), "--output-dir", str(out),
            "--prefix", "toy", "--splits", "dev", "--num-jobs", "1"]  # fmt: skip
    with pytest.raises(SystemExit) as e:
        cf.main(argv)
    assert "toy-x" in str(e.value) and str(path) in str(e.value)
    assert not list(out.glob("*"))


def test_compute_fbank_writes_80_dim_cuts(tmp_path):
    cf = _load_compute_fbank()
    recs = [Recording.from_file(_wav(tmp_path / f"{i}.wav", seconds=0.3 + 0.1 * i), recording_id=f"toy-{i}")
            for i in range(2)]  # fmt: skip
    _write_split(tmp_path / "manifests", recs, [_sup(r) for r in recs])
    out = tmp_path / "fbank"
    argv = ["--manifest-dir", str(tmp_path / "manifests"), "--output-dir", str(out),
            "--prefix", "toy", "--splits", "dev", "--num-jobs", "1"]  # fmt: skip
    cf.main(argv)
    from lhotse import CutSet

    cuts = CutSet.from_file(out / "toy_cuts_dev.jsonl.gz")
    assert len(cuts) == 2
    for cut in cuts:
        feats = cut.load_features()
        assert feats.shape[1] == 80 and abs(feats.shape[0] - round(cut.duration * 100)) <= 2
        assert cut.supervisions[0].text == "ONE TWO"
    cf.main(argv)  # existing cut set: skipped, not an error


def _sphere(path: Path, header_fields: str, header_size: int = 1024) -> Path:
    head = f"NIST_1A\n{header_size:7d}\n{header_fields}end_head\n".encode()
    path.write_bytes(head + b" " * (header_size - len(head)) + bytes(800))
    return path


def test_sphere_rate_is_read_from_the_header_of_a_file_soundfile_cannot_open(tmp_path):
    # Switchboard's files are shorten-compressed mu-law: soundfile refuses them, the header is enough.
    fields = "sample_rate -i 8000\nchannel_count -i 2\nsample_coding -s26 ulaw,embedded-shorten-v2.00\n"
    path = _sphere(tmp_path / "sw02001.sph", fields)
    assert sphere_sampling_rate(path) == 8000
    rec = Recording(
        id="sw02001", sources=[AudioSource(type="file", channels=[0, 1], source=str(path))],
        sampling_rate=8000, num_samples=400, duration=0.05,
    )  # fmt: skip
    assert check_recording(rec, expected_sampling_rate=8000) == []
    assert "expected 16000 Hz" in check_recording(rec, expected_sampling_rate=16000)[0]


def test_a_sph_file_without_a_sphere_header_is_named(tmp_path):
    path = tmp_path / "bad.sph"
    path.write_bytes(b"RIFF....WAVE")
    rec = Recording(
        id="bad", sources=[AudioSource(type="file", channels=[0], source=str(path))],
        sampling_rate=8000, num_samples=8, duration=0.001,
    )  # fmt: skip
    (problem,) = check_recording(rec, expected_sampling_rate=8000)
    assert str(path) in problem and "NIST SPHERE" in problem
