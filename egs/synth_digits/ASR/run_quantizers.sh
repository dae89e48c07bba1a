#!/usr/bin/env bash
# Quantization methods compared on one trained float model, on the synthetic digits.
#
# Usage: egs/synth_digits/ASR/run_quantizers.sh [--stage N] [--stop-stage N] [--jobs N]
#            [--float-dir DIR] [--float-epoch N] [--num-epochs N] [--base-lr LR]
#            [--granularity tensor|channel|group] [--search-epochs N]
#            [--uniform-bits "8 4 ..."] [--gq-bits "4 2 ..."] [--gq-soft-bits "..."]
#            [--gq-mixed SUFFIX] [--targets "3 2.5"] [--gq-mix-targets "2"]
#            [--train-opts "FLAGS" --exp-suffix S] [--seeds "42 43"] [--memory true]
#  stage 1: compression runs, each from the float model's averaged weights with the same
#           recipe (--num-epochs, labels + KL to the frozen float model):
#             lsq-b{8,6,4,3,2,1}      uniform LSQ at --granularity
#             gq-b{4,3,2}, gq-b2_ffn1 general quantizer (straight-through hard phase); the
#                                     last (--gq-mixed, "" for none) with 1-bit FFNs
#             gq-soft-b{4,3,2}        the same with the hard phase's soft-path gradient
#             mp1-t{4,3,2.5}          one-stage mixed precision at those average-bit targets
#             gq-mix-t<t>             (--gq-mix-targets) one-stage mixed precision with the
#                                     general quantizer over {1, 2, 4, 8} bits per matrix
#           and int8 post-training quantization (ptq-int8)
#  stage 2: independent two-stage baselines: mp2-search-t* learns a bit map with the same
#           Gumbel-softmax search over the frozen float weights (--search-epochs), then
#           mp2-t* quantizes the float model at that map and retrains (--num-epochs); the
#           row's time is the sum of both
#  stage 3: export every run as a packed file and decode that file (and the float model);
#           --memory true decodes each file a second time with its weights kept as packed
#           codes in memory (decode.py --keep-codes), for the resident-memory and RTF
#           columns (run it with --jobs 1 on a quiet machine: the RTF is a timing)
#  stage 4: the table (quant_comparison/comparison.md, .json)
#  --train-opts adds train.py flags to every run, e.g. "--model-preset lstm-digits" for an
#  LSTM float model; --exp-suffix S keeps such runs in exp_quant$S/ and quantizers$S/.
#  --seeds "42 43": stages 1-3 once per seed, the first in exp_quant$S/ from --float-dir, the
#  others (seed N) in exp_quant${S}_seedN/ from ${float_dir}_seedN (train it with train.py
#  --seed N); stage 4 pools the seeds and prints the seed-vs-seed noise floor.
# Needs ./prepare.sh and a trained float model: the tables start from train.py's recipe,
#   ./conformer_transducer/train.py --num-epochs 10 --max-duration 60 --exp-dir conformer_transducer/exp_float
set -euo pipefail
# The body is one block that bash parses before running it, so editing this file while a
# long run of it goes on cannot change or break that run (bash reads scripts as it goes).
{

stage=1
stop_stage=4
jobs=2
float_dir=conformer_transducer/exp_float
float_epoch=10
num_epochs=2
base_lr=5e-4
granularity=channel
anneal_batches=250
search_epochs=1
uniform_bits="8 6 4 3 2 1"
gq_bits="4 3 2"
gq_soft_bits="4 3 2"
targets="4 3 2.5"
gq_mixed="b2_ffn1"
gq_mix_targets=""
train_opts=""
exp_suffix=""
seeds=42
memory=false
decoding_method=modified_beam_search
recipe=conformer_transducer

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$script_dir"
. ../../../utils/parse_options.sh

log() { echo "$(date '+%Y-%m-%d %H:%M:%S') (run_quantizers.sh:${BASH_LINENO[0]}) $*"; }

out_dir=$recipe/exp_comparisons/quantizers$exp_suffix
mkdir -p "$out_dir"
first_seed=${seeds%% *}
# the run root and float model of seed $1: the first seed's are the plain names
seed_root() { [ "$1" = "$first_seed" ] && echo "$recipe/exp_quant$exp_suffix" || echo "$recipe/exp_quant${exp_suffix}_seed$1"; }
seed_float_dir() { [ "$1" = "$first_seed" ] && echo "$float_dir" || echo "${float_dir}_seed$1"; }
for seed in $seeds; do
  f=$(seed_float_dir "$seed")/epoch-$float_epoch.pt
  [ -f "$f" ] || { echo "$0: $f missing: train the float model first (run.sh; train.py --seed $seed)" >&2; exit 1; }
done
num_layers=$(python3 -c "import torch,sys; print(torch.load(sys.argv[1], map_location='cpu', weights_only=False)['model_config']['num_layers'])" "$float_dir/epoch-$float_epoch.pt")
d="d$num_layers-w1.0"
# run_queue (one thread per training), resume_flag (continue an interrupted run),
# decoded (a decoding summary exists)
. ../../../utils/train_queue.sh

mp_model="quant_granularity=$granularity mp_candidates=2,3,4,6,8"

# "dir|train flags" per compression run of stage 1
stage1_runs() {
  for b in $uniform_bits; do echo "lsq-b$b|--subnets $d-b$b --model quant_granularity=$granularity"; done
  for b in $gq_bits; do echo "gq-b$b|--subnets $d-b$b --model quantizer=gq"; done
  [ -z "$gq_mixed" ] || echo "gq-$gq_mixed|--subnets $d-$gq_mixed --model quantizer=gq"
  for b in $gq_soft_bits; do echo "gq-soft-b$b|--subnets $d-b$b --model quantizer=gq --gq-hard-grad soft"; done
  for t in $targets; do echo "mp1-t$t|--subnets $d-bmix --model $mp_model --mp-target-bits $t"; done
  for t in $gq_mix_targets; do
    echo "gq-mix-t$t|--subnets $d-bmix --model quantizer=gq mp_candidates=1,2,4,8 --mp-target-bits $t"
  done
}

queue_runs() {  # reads "dir|train flags" lines; --num-epochs in the flags overrides the common one
  while IFS='|' read -r name flags; do
    dir=$root/$name
    epochs=$(echo " $flags" | sed -n 's/.* --num-epochs \([0-9]*\).*/\1/p')
    [ -f "$dir/epoch-${epochs:-$num_epochs}.pt" ] || echo "mkdir -p $dir && $common --exp-dir $dir \
$(resume_flag $dir) $flags >> $dir/train-stdout.log 2>&1"
  done | run_queue
}

all_runs() {
  echo "ptq-int8 1"
  stage1_runs | cut -d'|' -f1 | sed "s/$/ $num_epochs/"
  for t in $targets; do echo "mp2-t$t $num_epochs"; done
}

# stages 1-3, once per seed (the loop body stays unindented to keep the stages readable)
for seed in $seeds; do
root=$(seed_root "$seed")
float_dir_seed=$(seed_float_dir "$seed")
float_ckpt=$float_dir_seed/epoch-$float_epoch.pt
mkdir -p "$root"
common="./$recipe/train.py --num-epochs $num_epochs --tensorboard false --init-from $float_ckpt \
--teacher-checkpoint $float_ckpt --distill true --student-label-scale 1.0 --base-lr $base_lr \
--warmup-batches 50 --gq-anneal-batches $anneal_batches --mp-anneal-batches $anneal_batches --seed $seed $train_opts"

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  log "stage 1: compression runs ($num_epochs epochs each from $float_ckpt, $jobs at a time)"
  [ -f "$root/ptq-int8/epoch-1.pt" ] || ./$recipe/quantize_ptq.py --float-checkpoint "$float_ckpt" --exp-dir "$root/ptq-int8"
  stage1_runs | queue_runs
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  log "stage 2: two-stage baselines (a search over the frozen float weights, then retraining at its map)"
  for t in $targets; do
    echo "mp2-search-t$t|--subnets $d-bmix --model $mp_model --mp-target-bits $t --freeze-weights true \
--num-epochs $search_epochs"
  done | queue_runs
  for t in $targets; do
    echo "mp2-t$t|--subnets $d-bmix --model $mp_model --bit-map $root/mp2-search-t$t/bit-map.json"
  done | queue_runs
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  log "stage 3: export and decode the packed files"
  {
    if ! decoded "$float_dir_seed" "$decoding_method" "epoch-$float_epoch-avg-1-use-averaged-model"; then
      echo "./$recipe/decode.py --epoch $float_epoch --avg 1 --use-averaged-model true --exp-dir $float_dir_seed \
--decoding-method $decoding_method --num-threads 1 > $root/float-decode.log 2>&1"
    fi
    all_runs | while read -r name epoch; do
      dir=$root/$name
      # the same file decoded with its weights kept as packed codes (--memory true)
      codes=""
      if [ "$memory" = true ] && ! decoded "$dir" "$decoding_method" packed-codes; then
        codes="./$recipe/decode.py --exp-dir $dir --packed-model \$(ls $dir/*.aio) --keep-codes true \
--decoding-method $decoding_method --num-threads 1 > $dir/decode-codes-stdout.log 2>&1"
      fi
      # already exported and decoded: at most the kept-codes decoding to do
      if decoded "$dir" "$decoding_method" packed; then
        [ -z "$codes" ] || echo "$codes"
        continue
      fi
      subnet=$(python3 -c "import torch,sys; print(torch.load(sys.argv[1], map_location='cpu', weights_only=False)['subnets'][0])" "$dir/epoch-$epoch.pt")
      echo "./$recipe/export.py --exp-dir $dir --epoch $epoch --subnet $subnet > $dir/export-stdout.log 2>&1 && \
./$recipe/decode.py --exp-dir $dir --packed-model $dir/$subnet.aio --decoding-method $decoding_method \
--num-threads 1 > $dir/decode-stdout.log 2>&1${codes:+ && $codes}"
    done
  } | run_queue
fi

done

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  log "stage 4: comparison into $out_dir"
  args=()
  label() {
    case $1 in
      ptq-int8) echo "int8 post-training" ;;
      lsq-b*) echo "uniform ${1#lsq-b}-bit" ;;
      gq-b2_ffn1) echo "GQ mixed (2-bit, FFN 1-bit)" ;;
      gq-b2_rnn1) echo "GQ mixed (2-bit, LSTM 1-bit)" ;;
      gq-mix-t*) echo "GQ one-stage target ${1#gq-mix-t} (1-8 bits)" ;;
      gq-b*_*) echo "GQ mixed (${1#gq-})" ;;
      gq-soft-b*) echo "GQ ${1#gq-soft-b}-bit, soft-path hard phase" ;;
      gq-b*) echo "GQ ${1#gq-b}-bit" ;;
      mp1-t*) echo "one-stage target ${1#mp1-t}" ;;
      mp2-t*) echo "two-stage target ${1#mp2-t}" ;;
    esac
  }
  # every seed's run of a row, comma-separated in the order of --seeds
  per_seed() { for seed in $seeds; do printf '%s,' "$(seed_root "$seed")/$1"; done | sed 's/,$//'; }
  for seed in $seeds; do args+=(--float-dir "$(seed_float_dir "$seed")"); done
  while read -r name _; do
    args+=(--run "$(label "$name")=$(per_seed "$name")")
    case $name in mp2-t*) args+=(--search "$(label "$name")=$(per_seed "mp2-search-${name#mp2-}")") ;; esac
  done < <(all_runs)
  python3 ../../../local/compare_quantizers.py --float-epoch "$float_epoch" \
    --decoding-method "$decoding_method" --out-dir "$out_dir" "${args[@]}"
fi
exit
}
