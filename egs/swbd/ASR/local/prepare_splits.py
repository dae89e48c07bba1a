#!/usr/bin/env python3
"""Switchboard's training / dev / eval2000 splits from lhotse's manifests, text cleaned.

Reads what ``lhotse prepare switchboard`` and ``lhotse prepare eval2000`` wrote into
``--manifest-dir`` (``swbd_{recordings,supervisions}_all``, ``eval2000_recordings_all``,
``eval2000_supervisions_unnorm``) and writes ``swbd_{recordings,supervisions}_<split>``
for ``train``, ``dev`` and ``eval2000``:

* text: :func:`allinone.utils.text_norm.clean_swbd_transcript` (markup and non-speech
  tokens out, lower case; hesitations and word fragments kept as spoken, so the model
  learns to emit them and scoring, ``decode.py --score-normalization swbd``, decides
  what counts). A segment with no spoken word left (``[noise]`` alone) is dropped: it
  has nothing to train on, and an empty reference has no words to score.
* dev: the first ``--dev-conversations`` conversations in sorted order, both sides,
  held out of training (Kaldi's ``train_dev`` holds out the first 4000 utterances; whole
  conversations keep their speakers out of training too). Training is the rest.
* speakers: one per conversation side (``sw02001A`` / ``sw02001B``); lhotse's recipe
  gives both channels side A's label, which would merge two people.

Usage (from egs/swbd/ASR):

    python local/prepare_splits.py --manifest-dir data/manifests --dev-conversations 25
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace
from pathlib import Path
from typing import Tuple

from allinone.utils.log import setup_script_logging
from allinone.utils.text_norm import clean_swbd_transcript


def get_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest-dir", type=Path, default=Path("data/manifests"))
    p.add_argument("--dev-conversations", type=int, default=25, help="conversations held out as dev")
    return p.parse_args(argv)


def _read(manifest_dir: Path, recordings: str, supervisions: str):
    from lhotse import RecordingSet, SupervisionSet

    paths = [manifest_dir / f"{recordings}.jsonl.gz", manifest_dir / f"{supervisions}.jsonl.gz"]
    for path in paths:
        if not path.is_file():
            raise SystemExit(f"prepare_splits.py: manifest not found: {path}")
    return RecordingSet.from_file(paths[0]), SupervisionSet.from_file(paths[1])


def cleaned(supervisions, side_speakers: bool):
    """Supervisions with cleaned text, those with no spoken word dropped."""
    from lhotse import SupervisionSet

    out = []
    for sup in supervisions:
        text = clean_swbd_transcript(sup.text or "")
        if not text:
            continue
        speaker = f"{sup.recording_id}{'AB'[sup.channel]}" if side_speakers else sup.speaker
        out.append(replace(sup, text=text, speaker=speaker))
    return SupervisionSet.from_segments(out)


def split_dev(recordings, supervisions, num_dev: int) -> Tuple[tuple, tuple]:
    """``((train recordings, supervisions), (dev recordings, supervisions))``, dev being the
    first ``num_dev`` conversations by id."""
    from lhotse import RecordingSet, SupervisionSet

    ids = sorted(recordings.ids)
    if not 0 < num_dev < len(ids):
        raise SystemExit(f"prepare_splits.py: --dev-conversations {num_dev} of {len(ids)} conversations")
    dev = set(ids[:num_dev])

    def part(held_out: bool):
        return (
            RecordingSet.from_recordings(r for r in recordings if (r.id in dev) == held_out),
            SupervisionSet.from_segments(s for s in supervisions if (s.recording_id in dev) == held_out),
        )

    return part(False), part(True)


def main(argv=None) -> None:
    setup_script_logging()
    args = get_args(argv)
    m = args.manifest_dir
    recordings, supervisions = _read(m, "swbd_recordings_all", "swbd_supervisions_all")
    train, dev = split_dev(recordings, cleaned(supervisions, side_speakers=True), args.dev_conversations)
    eval_recs, eval_sups = _read(m, "eval2000_recordings_all", "eval2000_supervisions_unnorm")
    splits = {"train": train, "dev": dev, "eval2000": (eval_recs, cleaned(eval_sups, side_speakers=False))}
    for name, (recs, sups) in splits.items():
        recs.to_file(m / f"swbd_recordings_{name}.jsonl.gz")
        sups.to_file(m / f"swbd_supervisions_{name}.jsonl.gz")
        hours = sum(s.duration for s in sups) / 3600
        logging.info(f"{name}: {len(recs)} conversations, {len(sups)} segments, {hours:.2f} h")


if __name__ == "__main__":
    main()
