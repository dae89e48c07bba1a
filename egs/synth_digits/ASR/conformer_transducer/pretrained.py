#!/usr/bin/env python3
r"""Transcribe your own audio files with a trained model (any subnet, any decoding method).

Files may be wav, flac, mp3, ... at any sample rate and with any number of channels: they
are downmixed and resampled to 16 kHz. One line per file is printed; a file that cannot be
read is named on stderr, the others are still transcribed (exit status 1 then).

Usage (from egs/synth_digits/ASR):

  # the model run.sh trained, modified beam search
  ./conformer_transducer/pretrained.py --epoch 10 --avg 1 --exp-dir conformer_transducer/exp \
    my-recording.wav other.flac

  # one subnet of an all-in-one checkpoint, greedy search
  ./conformer_transducer/pretrained.py --epoch 8 --exp-dir conformer_transducer/exp_all_in_one \
    --subnets d4-w0.5-b4 --decoding-method greedy_search my-recording.wav

  # a packed low-bit model file written by export.py
  ./conformer_transducer/pretrained.py --packed-model exp_q/lsq-b4/d6-w1.0-b4.aio my-recording.wav

  # the CTC head through HLG (prepare.sh stage 5)
  ./conformer_transducer/pretrained.py --epoch 10 --exp-dir conformer_transducer/exp \
    --decoding-method 1best --lang-dir data/lang_bpe_64 my-recording.wav

To record a few digits (sox): rec -r 16000 -c 1 my-recording.wav trim 0 4
"""

from allinone.decoding.transcribe import transcribe_main

if __name__ == "__main__":
    transcribe_main({}, __doc__)
