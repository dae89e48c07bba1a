#!/usr/bin/env bash
# All-in-one nested training against individually trained twins, on the synthetic digits.
#
# Usage: egs/synth_digits/ASR/run_all_in_one.sh [--stage N] [--stop-stage N] [--jobs N]
#            [--subnets GRID] [--num-epochs N] [--subnet-policy sandwich|largest_random]
#            [--sandwich-k K] [--distill true|false]
#            [--distill-start-batch N] [--warmup-subnet NAME --warmup-subnet-batches N]
#            [--subnet-draw-weights NAME=W,NAME=W] [--subnet-loss-weights NAME=W,NAME=W]
#            [--exp-suffix S] [--repeat-seed S --repeat-subnets NAME,NAME,..]
#            [--train-opts "FLAGS" --exp-suffix S --individual-suffix S2] [--comparison-dir DIR]
#            [--decoding-method modified_beam_search|greedy_search|ctc-greedy-search|...]
#  stage 1: train the whole grid in one pass (exp_all_in_one/) and every subnet of it
#           alone with the same recipe (exp_individual/<subnet>/); --jobs runs that many
#           trainings at once, one CPU thread each, so every run sees the same conditions
#           The one pass may distil from batch --distill-start-batch on and train one subnet
#           (--warmup-subnet, e.g. the largest) alone for its first --warmup-subnet-batches
#           batches, draw its random picks with --subnet-draw-weights and weigh each
#           subnet's label losses with --subnet-loss-weights (train.py's flags; the twins
#           do not take them); --subnet-policy picks what runs per step:
#           sandwich (largest + smallest + K random middle subnets, the default) or
#           largest_random (largest + K random among all the others); --exp-suffix S
#           keeps such a variant in exp_all_in_one$S and all_in_one_comparison$S beside
#           the others (the individual twins are shared).
#           --repeat-seed S trains the --repeat-subnets twins again with --seed S
#           (exp_individual_seed$S/<subnet>/) to measure how far two runs of one
#           configuration differ
#           --train-opts "FLAGS" adds train.py flags to every training here (the one pass,
#           the twins and the repeats), e.g. another seed or learning rate; such runs need
#           their own --exp-suffix and --individual-suffix S (twins in exp_individual$S/,
#           repeats in exp_individual${S}_seed$R/); stage 3 refuses twins whose recipe
#           differs from the one pass's, and train.py refuses to resume with another one
#  stage 2: decode every subnet of both kinds (--decoding-method, default modified beam
#           search; one thread); runs
#           already decoded at this epoch are skipped
#  stage 3: compare: WER pairs with the MAPSSWE p-value, wall times, a WER-vs-size plot,
#           into --comparison-dir (default conformer_transducer/exp_comparisons/all_in_one$S);
#           runs continued to more epochs (a larger --num-epochs resumes them exactly: the
#           learning-rate schedule does not depend on it) need their own, or they replace
#           the comparison of the shorter runs
# Needs ./prepare.sh to have run (run.sh stage 1 does it).
set -euo pipefail
# The body is one block that bash parses before running it, so editing this file while a
# long run of it goes on cannot change or break that run (bash reads scripts as it goes).
{

stage=1
stop_stage=3
jobs=2
subnets=default
num_epochs=10
subnet_policy=sandwich
sandwich_k=1
distill=false
distill_start_batch=0
warmup_subnet=""
warmup_subnet_batches=0
subnet_draw_weights=""
subnet_loss_weights=""
exp_suffix=""
repeat_seed=""
repeat_subnets=""
train_opts=""
individual_suffix=""
comparison_dir=""
decoding_method=modified_beam_search
recipe=conformer_transducer

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$script_dir"
. ../../../utils/parse_options.sh

log() { echo "$(date '+%Y-%m-%d %H:%M:%S') (run_all_in_one.sh:${BASH_LINENO[0]}) $*"; }

if [ -n "$train_opts" ] && { [ -z "$individual_suffix" ] || [ -z "$exp_suffix" ]; }; then
  echo "$0: --train-opts changes the recipe or the seed, so give its runs their own" \
    "--exp-suffix and --individual-suffix (got '$exp_suffix', '$individual_suffix')" >&2
  exit 1
fi
# Flags that change the one pass only (the twins are the same whatever they are), at
# values other than the defaults above. ("auto" counts as a variant although it runs the
# sandwich rule on grids of more than 6 subnets: it does not on smaller ones.)
one_pass_variant=""
[ "$subnet_policy" != sandwich ] && one_pass_variant+=" --subnet-policy $subnet_policy"
[ "$sandwich_k" != 1 ] && one_pass_variant+=" --sandwich-k $sandwich_k"
[ "$distill" != false ] && one_pass_variant+=" --distill $distill"
[ "$distill_start_batch" != 0 ] && one_pass_variant+=" --distill-start-batch $distill_start_batch"
[ -n "$warmup_subnet" ] && one_pass_variant+=" --warmup-subnet $warmup_subnet"
[ -n "$subnet_draw_weights" ] && one_pass_variant+=" --subnet-draw-weights"
[ -n "$subnet_loss_weights" ] && one_pass_variant+=" --subnet-loss-weights"
if [ -n "$one_pass_variant" ] && [ -z "$exp_suffix" ]; then
  # Without its own directory such a one pass would be skipped as done whenever the
  # default one has finished, and compared in its place.
  echo "$0:$one_pass_variant: these change the one pass, so give it its own --exp-suffix" >&2
  exit 1
fi
aio_dir=$recipe/exp_all_in_one$exp_suffix
ind_root=$recipe/exp_individual$individual_suffix
repeat_root=$recipe/exp_individual${individual_suffix}_seed$repeat_seed
out_dir=${comparison_dir:-$recipe/exp_comparisons/all_in_one$exp_suffix}
mkdir -p "$ind_root" "$out_dir"
# The grid as explicit names, expanded against the recipe's layer count as train.py does.
names=$(python3 - "$subnets" "$recipe/train.py" <<'EOF2'
import importlib.util, sys
sys.path.insert(0, "../../..")
from allinone.subnet import parse_subnets
spec = importlib.util.spec_from_file_location("recipe_train", sys.argv[2])
recipe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(recipe)
num_layers = recipe.RECIPE_DEFAULTS["model"]["num_layers"]
print(" ".join(s.name for s in parse_subnets(sys.argv[1], num_layers)))
EOF2
)
log "grid: $names"
repeat_names=""
if [ -n "$repeat_seed" ] || [ -n "$repeat_subnets" ]; then
  if [ -z "$repeat_seed" ] || [ -z "$repeat_subnets" ]; then
    echo "$0: --repeat-seed and --repeat-subnets go together (got '$repeat_seed', '$repeat_subnets')" >&2
    exit 1
  fi
  for name in ${repeat_subnets//,/ }; do
    case " $names " in
      *" $name "*) ;;
      *) echo "$0: --repeat-subnets: $name is not in the grid ($names)" >&2; exit 1 ;;
    esac
  done
  repeat_names=${repeat_subnets//,/ }
fi

# run_queue (one thread per training), resume_flag (continue an interrupted run),
# decoded (a decoding summary exists)
. ../../../utils/train_queue.sh

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  log "stage 1: training ($num_epochs epochs each, $jobs at a time)"
  common="./$recipe/train.py --num-epochs $num_epochs --tensorboard false $train_opts"
  warmup=""
  if [ -n "$warmup_subnet" ]; then
    warmup="--warmup-subnet $warmup_subnet --warmup-subnet-batches $warmup_subnet_batches"
  fi
  {
    # The one pass first: it is the longest job.
    [ -f "$aio_dir/epoch-$num_epochs.pt" ] || echo "mkdir -p $aio_dir && $common --exp-dir $aio_dir \
$(resume_flag $aio_dir) --subnets $subnets --subnet-policy $subnet_policy --sandwich-k $sandwich_k \
--distill $distill --distill-start-batch $distill_start_batch $warmup \
${subnet_draw_weights:+--subnet-draw-weights $subnet_draw_weights} \
${subnet_loss_weights:+--subnet-loss-weights $subnet_loss_weights} >> $aio_dir/train-stdout.log 2>&1"
    for name in $names; do
      d=$ind_root/$name
      [ -f "$d/epoch-$num_epochs.pt" ] || echo "mkdir -p $d && $common --exp-dir $d $(resume_flag $d) \
--subnets $name >> $d/train-stdout.log 2>&1"
    done
    for name in $repeat_names; do
      d=$repeat_root/$name
      [ -f "$d/epoch-$num_epochs.pt" ] || echo "mkdir -p $d && $common --exp-dir $d $(resume_flag $d) \
--subnets $name --seed $repeat_seed >> $d/train-stdout.log 2>&1"
    done
  } | run_queue
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  log "stage 2: decoding"
  {
    for d in $aio_dir $(for name in $names; do echo $ind_root/$name; done) \
        $(for name in $repeat_names; do echo $repeat_root/$name; done); do
      decoded "$d" "$decoding_method" "epoch-$num_epochs-avg-1-use-averaged-model" && continue
      echo "./$recipe/decode.py --epoch $num_epochs --avg 1 --use-averaged-model true --exp-dir $d \
--decoding-method $decoding_method --subnets all --num-threads 1 > $d/decode-stdout.log 2>&1"
    done
  } | run_queue
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  log "stage 3: comparison into $out_dir"
  python3 ../../../local/compare_all_in_one.py \
    --all-in-one-dir "$aio_dir" \
    --individual-root "$ind_root" \
    --decoding-method "$decoding_method" \
    --epoch "$num_epochs" \
    --out-dir "$out_dir" \
    ${repeat_names:+--repeat-individual-root "$repeat_root"}
fi
exit
}
