#!/usr/bin/env python3
r"""Transcribe audio files with a trained Switchboard model (any subnet, any decoding method).

Any format lhotse reads, any sample rate and channel count: the audio is downmixed and
resampled to 16 kHz (8 kHz telephone audio is upsampled, as in training). One line per
file; unreadable files are named on stderr and the rest are still transcribed.

Usage (from egs/swbd/ASR):

  ./conformer_transducer/pretrained.py --epoch 30 --avg 10 --exp-dir conformer_transducer/exp \
    --decoding-method modified_beam_search --device cuda file1.flac file2.wav
"""

from pathlib import Path

from allinone.decoding.transcribe import transcribe_main

DEFAULTS = {
    "bpe_model": Path("data/lang_bpe_500/bpe.model"),
    "lang_dir": Path("data/lang_bpe_500"),
}

if __name__ == "__main__":
    transcribe_main(DEFAULTS, __doc__)
