#!/usr/bin/env python3
r"""Decode the synthetic-digits test sets with a trained Conformer transducer.

Usage (from egs/synth_digits/ASR):

  ./conformer_transducer/decode.py \
    --epoch 4 \
    --avg 2 \
    --use-averaged-model true \
    --exp-dir conformer_transducer/exp \
    --decoding-method modified_beam_search \
    --beam-size 4

CTC head (the model must be trained with --use-ctc true), through kaldi-decoder with the
graphs of prepare.sh stage 5 (H: ctc-decoding, HL: hl, HLG: 1best):

  ./conformer_transducer/decode.py --epoch 8 --avg 1 --exp-dir conformer_transducer/exp \
    --decoding-method 1best --lang-dir data/lang_bpe_64 --ngram-lm-scale 1.0

Any subnets of a nested (all-in-one) checkpoint, by name or all of them:

  ./conformer_transducer/decode.py --epoch 10 --avg 1 --use-averaged-model true \
    --exp-dir conformer_transducer/exp_all_in_one --subnets all

The same with each subnet's BatchNorm statistics first recomputed on 50 clean training
batches (results in <exp-dir>/modified_beam_search-bn-calibrated/):

  ./conformer_transducer/decode.py --epoch 10 --avg 1 --exp-dir conformer_transducer/exp_all_in_one \
    --subnets all --bn-calibration-batches 50

A packed low-bit model file written by export.py (its size is the stored size; results
carry the source subnet's name and the suffix "packed"):

  ./conformer_transducer/decode.py --exp-dir conformer_transducer/exp_quant/lsq-b4 \
    --packed-model conformer_transducer/exp_quant/lsq-b4/d6-w1.0-b4.aio

Writes recogs-*, errs-* and wer-summary-* per test set and subnet (the subnet name
leads the suffix) to <exp-dir>/<decoding-method>/, plus subnet-summary-*.md/.json: per
subnet the parameters used, stored bytes, compression ratio against the float full
model, WER per test set and the real-time factor (--num-threads, default one thread).
"""

from allinone.decoding.recipe import decode_main

# DecodeOptions' defaults are this corpus's names (synth_digits_cuts, test-seen/test-unseen).
DECODE_DEFAULTS = {}

if __name__ == "__main__":
    decode_main(DECODE_DEFAULTS, __doc__)
