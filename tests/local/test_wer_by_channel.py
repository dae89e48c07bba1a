"""local/wer_by_channel.py splits a decoding's WER by the channel of each utterance."""

import subprocess
import sys
from pathlib import Path

from lhotse import CutSet
from lhotse.testing.dummies import dummy_cut, dummy_supervision

from allinone.utils.scoring import write_recogs

SCRIPT = Path(__file__).resolve().parents[2] / "egs/synth_digits/ASR/local/wer_by_channel.py"


def test_wer_per_channel(tmp_path):
    channels = [None, {"kind": "telephone"}, {"kind": "telephone"}, {"kind": "microphone"}]
    cuts = []
    for i, ch in enumerate(channels):
        cut = dummy_cut(i, supervisions=[dummy_supervision(i)])
        cut.supervisions[0].custom = {"channel": ch}
        cuts.append(cut)
    CutSet.from_cuts(cuts).to_file(tmp_path / "cuts.jsonl.gz")
    ref = "one two three four".split()
    hyps = [ref, ref[:3], ref, ["one", "oh", "three", "four"]]
    write_recogs(tmp_path / "recogs.txt", [(c.id, ref, h) for c, h in zip(cuts, hyps)])
    cmd = [
        sys.executable,
        str(SCRIPT),
        "--cuts",
        str(tmp_path / "cuts.jsonl.gz"),
        str(tmp_path / "recogs.txt"),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    row = out.stdout.strip().splitlines()[-1]
    assert row == "| recogs.txt | 0.00 (4) | 12.50 (8) | 25.00 (4) | 12.50 (16) |"
