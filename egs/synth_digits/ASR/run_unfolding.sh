#!/usr/bin/env bash
# Unfolding: a seed of a few Conformer blocks run weight-tied as deeper models, trained in
# one pass, against plain models of each logical depth trained alone, on the synthetic digits.
#
# Usage: egs/synth_digits/ASR/run_unfolding.sh [--stage N] [--stop-stage N] [--jobs N]
#            [--subnets GRID] [--num-epochs N] [--alpha A] [--beta B]
#            [--distill-start-batch N] [--sandwich-k K] [--unfold-relax true|false]
#            [--seed-warmup-batches N] [--exp-suffix S]
#  stage 1: train the unfolding grid in one pass (exp_unfold/): every step runs the deepest
#           path, the seed and --sandwich-k sampled middle depths; loss = deepest
#           + alpha * seed (+ middle depths) + beta * KL(deepest -> each other path) from
#           batch --distill-start-batch on. Then every plain twin (exp_plain/<name>/, the
#           same recipe with num_layers = its logical depth); --jobs at a time, 1 thread each.
#           With --seed-warmup-batches N, the first N batches of every run deeper than the
#           seed train only the seed's depth (the one pass: the seed; a plain model: its
#           bottom layers), and no KL runs before batch N + 1: deep and multi-path models
#           otherwise stay on the blank-only plateau for most of 8 epochs (RESULTS.md)
#           Defaults (--seed-warmup-batches 700 --beta 0) are this corpus's passing recipe:
#           with beta = 1 the KL from the deepest path, still worse than the seed when the
#           joint phase starts, set every path back (RESULTS.md, "Unfolding"). The default
#           --exp-suffix names that run's directories (exp_unfold_w700_beta0/, ...), so
#           other settings go beside it instead of over it
#  stage 2: decode every logical depth of both kinds (modified beam search, one thread);
#           runs already decoded at this epoch are skipped
#  stage 3: peak memory of a training step of each path alone, each plain model, and the
#           one-pass step (unfold_comparison/memory.jsonl)
#  stage 4: comparison table (unfold_comparison/comparison.md, .json)
# Needs ./prepare.sh to have run (run.sh stage 1 does it).
set -euo pipefail
# The body is one block that bash parses before running it, so editing this file while a
# long run of it goes on cannot change or break that run (bash reads scripts as it goes).
{

stage=1
stop_stage=4
jobs=2
subnets=unfold
num_epochs=8
alpha=1.0
beta=0.0
distill_start_batch=500
sandwich_k=1
unfold_relax=false
seed_warmup_batches=700
exp_suffix="_w700_beta0"
decoding_method=modified_beam_search
recipe=conformer_transducer

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$script_dir"
. ../../../utils/parse_options.sh

log() { echo "$(date '+%Y-%m-%d %H:%M:%S') (run_unfolding.sh:${BASH_LINENO[0]}) $*"; }

unfold_dir=$recipe/exp_unfold$exp_suffix
plain_root=$recipe/exp_plain$exp_suffix
out_dir=$recipe/exp_comparisons/unfolding$exp_suffix
mkdir -p "$plain_root" "$out_dir"
# "name:logical depth" per subnet of the grid, the seed last; and the seed's name.
read -r num_blocks seed pairs < <(python3 - "$subnets" "$recipe/train.py" <<'EOF2'
import importlib.util, sys
sys.path.insert(0, "../../..")
from allinone.subnet import parse_subnets
from allinone.reports.unfold_comparison import plain_twin
spec = importlib.util.spec_from_file_location("recipe_train", sys.argv[2])
recipe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(recipe)
n = recipe.RECIPE_DEFAULTS["model"]["num_layers"]
grid = sorted(parse_subnets(sys.argv[1], n), key=lambda s: -s.depth)
print(n, grid[-1].name, " ".join(f"{s.name}:{plain_twin(s.name).name}:{s.depth}" for s in grid))
EOF2
)
log "$num_blocks physical blocks; seed $seed; grid (name:plain twin:depth): $pairs"
warmup=""
if [ "$seed_warmup_batches" -gt 0 ]; then warmup="--warmup-subnet $seed --warmup-subnet-batches $seed_warmup_batches"; fi

# run_queue (one thread per training), resume_flag (continue an interrupted run),
# decoded (a decoding summary exists)
. ../../../utils/train_queue.sh

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  log "stage 1: training ($num_epochs epochs each, $jobs at a time)"
  common="./$recipe/train.py --num-epochs $num_epochs --tensorboard false"
  {
    [ -f "$unfold_dir/epoch-$num_epochs.pt" ] || echo "mkdir -p $unfold_dir && $common --exp-dir $unfold_dir \
$(resume_flag $unfold_dir) --subnets $subnets --subnet-policy sandwich --sandwich-k $sandwich_k \
--distill true --distill-start-batch $distill_start_batch --distill-scale $beta --student-label-scale 1.0 \
--subnet-loss-weights $seed=$alpha --unfold-relax $unfold_relax $warmup >> $unfold_dir/train-stdout.log 2>&1"
    for p in $pairs; do
      IFS=: read -r _ twin depth <<< "$p"
      d=$plain_root/$twin
      twin_warmup=$warmup
      [ "$depth" -gt "$num_blocks" ] || twin_warmup=""  # the seed's own twin has nothing to warm up
      [ -f "$d/epoch-$num_epochs.pt" ] || echo "mkdir -p $d && $common --exp-dir $d $(resume_flag $d) \
--model num_layers=$depth $twin_warmup >> $d/train-stdout.log 2>&1"
    done
  } | run_queue
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  log "stage 2: decoding"
  for d in $unfold_dir $(for p in $pairs; do IFS=: read -r _ twin _ <<< "$p"; echo $plain_root/$twin; done); do
    decoded "$d" "$decoding_method" "epoch-$num_epochs-avg-1-use-averaged-model" && continue
    echo "./$recipe/decode.py --epoch $num_epochs --avg 1 --use-averaged-model true --exp-dir $d \
--decoding-method $decoding_method --subnets all --num-threads 1 > $d/decode-stdout.log 2>&1"
  done | run_queue
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  log "stage 3: training-step peak memory (one at a time, one thread)"
  rm -f "$out_dir/memory.jsonl"
  bench="./$recipe/benchmark_memory.py --json-out $out_dir/memory.jsonl --unfold-relax $unfold_relax"
  $bench --subnets "$subnets" --subnet-policy sandwich --sandwich-k "$sandwich_k" --distill true
  for p in $pairs; do
    IFS=: read -r name twin depth <<< "$p"
    $bench --subnets "$name"
    $bench --subnets "$twin" --model "num_layers=$depth"
  done
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  log "stage 4: comparison into $out_dir"
  python3 ../../../local/compare_unfolding.py \
    --unfold-dir "$unfold_dir" \
    --plain-root "$plain_root" \
    --decoding-method "$decoding_method" \
    --epoch "$num_epochs" \
    --memory-file "$out_dir/memory.jsonl" \
    --grid "$subnets" \
    --out-dir "$out_dir"
fi
exit
}
