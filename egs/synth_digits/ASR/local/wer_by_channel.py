#!/usr/bin/env python3
r"""WER of one decoding per transmission channel of the synthetic corpus.

The generator stores each utterance's channel (none, telephone or microphone) in its
supervision (``custom["channel"]``); this splits a ``recogs-*`` file by it.

Usage (from egs/synth_digits/ASR):

  ./local/wer_by_channel.py --cuts data/fbank/synth_digits_cuts_dev-unseen.jsonl.gz \
    conformer_transducer/exp/modified_beam_search/recogs-dev-unseen-*.txt

Prints one markdown row per recogs file: the WER of each channel and of all utterances,
with the number of reference words.
"""

import argparse
from pathlib import Path

from lhotse import load_manifest_lazy

from allinone.utils.scoring import compute_wer, read_recogs

KINDS = ("none", "telephone", "microphone")


def channel_of_cuts(path: Path) -> dict:
    """Cut id -> channel kind ("none" where the supervision records no channel)."""
    out = {}
    for cut in load_manifest_lazy(path):
        custom = cut.supervisions[0].custom or {}
        out[cut.id] = (custom.get("channel") or {"kind": "none"})["kind"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cuts", type=Path, required=True, help="the decoded split's cut manifest")
    p.add_argument("recogs", type=Path, nargs="+", help="recogs-*.txt files of decode.py")
    args = p.parse_args()
    channels = channel_of_cuts(args.cuts)
    print("| recogs | " + " | ".join(f"{k} WER (words)" for k in KINDS) + " | all |")
    print("|---|" + "---|" * (len(KINDS) + 1))
    for path in args.recogs:
        results = read_recogs(path)
        unknown = [r[0] for r in results if r[0] not in channels]
        if unknown:
            raise SystemExit(f"{path}: {len(unknown)} utterances not in {args.cuts}, e.g. {unknown[0]}")
        cells = []
        for kind in KINDS:
            part = [r for r in results if channels[r[0]] == kind]
            wer = compute_wer(part) if part else None
            cells.append("-" if wer is None else f"{wer.wer:.2f} ({wer.ref_words})")
        total = compute_wer(results)
        print(f"| {path.name} | " + " | ".join(cells) + f" | {total.wer:.2f} ({total.ref_words}) |")


if __name__ == "__main__":
    main()
