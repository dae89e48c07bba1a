#!/usr/bin/env bash
# The whole synthetic-digits job: install, prepare the corpus, train, decode, print WERs.
#
# Usage: egs/synth_digits/ASR/run.sh [--stage N] [--stop-stage N] [--num-epochs N]
#                                    [--exp-dir DIR] [--max-duration SEC] [--world-size N]
#                                    [--model-opts "k=v ..."] [--channel-copy-prob P]
#                                    [--test-sets LIST]
#  stage 0: install Debian and Python dependencies (utils/install_deps.sh)
#  stage 1: ./prepare.sh (synthesis, fbank, BPE and lang dir; skips finished stages)
#  stage 2: train the default model (rerun after a kill, it continues the run): a 4-layer
#           Conformer transducer (--model-opts), 10 epochs as two one-thread processes of
#           30 s batches each; every epoch hears each training utterance through a telephone
#           line or a microphone with chance --channel-copy-prob (RESULTS.md: "Speech
#           outside the training conditions")
#  stage 3: decode test-seen, test-unseen and test-unseen-8k (unseen voices over a telephone
#           line): transducer greedy and modified beam search,
#           CTC head through HLG (kaldifst graphs, kaldi-decoder; LM scale 0.1, the best of
#           a dev sweep in RESULTS.md: the digit strings are random, so the LM barely helps)
set -euo pipefail
# The body is one block that bash parses before running it, so editing this file while a
# long run of it goes on cannot change or break that run (bash reads scripts as it goes).
{

stage=0
stop_stage=100
num_epochs=10
exp_dir=conformer_transducer/exp
max_duration=30
world_size=2
# Chosen on dev / dev-unseen within the 15-minute budget of the whole job (RESULTS.md):
# 4 layers train 10 epochs in the time 6 layers take for 8, and hold up better on unseen
# voices and channels; at 10 epochs clean speech is no worse than the 6-layer recipe's.
model_opts="num_layers=4"
channel_copy_prob=0.3
vocab_size=64
test_sets=test-seen,test-unseen,test-unseen-8k

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$script_dir"
. ../../../utils/parse_options.sh

log() { echo "$(date '+%Y-%m-%d %H:%M:%S') (run.sh:${BASH_LINENO[0]}) $*"; }
# resume_flag: the train.py flags that continue the run in the exp dir, if any
. ../../../utils/train_queue.sh
start=$(date +%s)

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  log "stage 0: dependencies"
  bash ../../../utils/install_deps.sh
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  log "stage 1: data preparation"
  ./prepare.sh --vocab-size $vocab_size
fi
prep_done=$(date +%s)

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  log "stage 2: training ($num_epochs epochs) into $exp_dir"
  if [ -f "$exp_dir/epoch-$num_epochs.pt" ]; then
    log "$exp_dir/epoch-$num_epochs.pt exists, skipping training"
  else
    # shellcheck disable=SC2046,SC2086  # the resume flag and --model values are word lists
    ./conformer_transducer/train.py $(resume_flag $exp_dir) \
      --num-epochs $num_epochs \
      --exp-dir $exp_dir \
      --world-size $world_size \
      --max-duration $max_duration \
      --model $model_opts \
      --channel-copies telephone,microphone \
      --channel-copy-prob $channel_copy_prob \
      --bpe-model data/lang_bpe_${vocab_size}/bpe.model
  fi
fi
train_done=$(date +%s)

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  for method in greedy_search modified_beam_search 1best; do
    log "stage 3: decoding with $method"
    ./conformer_transducer/decode.py \
      --epoch $num_epochs \
      --avg 1 \
      --use-averaged-model true \
      --exp-dir $exp_dir \
      --bpe-model data/lang_bpe_${vocab_size}/bpe.model \
      --lang-dir data/lang_bpe_${vocab_size} \
      --test-sets $test_sets \
      --ngram-lm-scale 0.1 \
      --decoding-method $method \
      --beam-size 4 | tee $exp_dir/wer-table-$method.md
  done
fi
end=$(date +%s)
log "wall time: preparation $((prep_done - start)) s, training $((train_done - prep_done)) s," \
    "decoding $((end - train_done)) s, total $((end - start)) s"
exit
}
