#!/usr/bin/env python3
r"""Fine-tune a wav2vec 2.0 / HuBERT checkpoint with CTC on LibriSpeech (train-clean-100 by default).

Usage (from egs/librispeech/ASR, after ./prepare.sh; the papers' setting: characters on 100 h):

  python ../../../local/train_bpe.py --transcript data/lang_bpe_500/transcript_words.txt \
    --lang-dir data/lang_char --vocab-size 40 --model-type char
  ./wav2vec2_ctc/train.py --pretrained-dir /path/to/wav2vec2-base --bpe-model data/lang_char/bpe.model \
    --num-epochs 30 --exp-dir wav2vec2_ctc/exp_100h --device cuda --use-fp16 true

  # HuBERT-large, the all-in-one grid over its 24 layers, FFN widths and bits
  ./wav2vec2_ctc/train.py --model encoder=hubert --pretrained-dir /path/to/hubert-large-ll60k \
    --bpe-model data/lang_char/bpe.model --subnets d24-w1.0-b32,d16-w1.0-b8,d24-w0.5-b4

The feature encoder stays frozen; time masking and LayerDrop follow the checkpoint's config;
the learning rate warms up linearly, then decays (Eden).
"""

from pathlib import Path

from allinone.training.cli import train_main

RECIPE_DEFAULTS = {
    "exp_dir": Path("wav2vec2_ctc/exp_100h"),
    "bpe_model": Path("data/lang_bpe_500/bpe.model"),
    "manifest_dir": Path("data/fbank"),
    "train_cuts": "librispeech_cuts_train-clean-100.jsonl.gz",
    "valid_cuts": "librispeech_cuts_dev-clean.jsonl.gz",
    "use_transducer": False,
    "use_ctc": True,
    "base_lr": 5e-5,
    "warmup_batches": 8000,
    "max_duration": 200.0,
    "model": {"encoder": "wav2vec2"},
}


if __name__ == "__main__":
    train_main(RECIPE_DEFAULTS, __doc__)
