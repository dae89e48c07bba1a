#!/usr/bin/env bash
# Deployment: subnets of one checkpoint exported to ONNX and decoded with sherpa-onnx, fp32 and
# int8, against the same subnets decoded in torch.
#
# Usage: egs/synth_digits/ASR/run_onnx.sh --exp-dir DIR --epoch N [--avg N] [--subnets "A B ..."]
#            [--decoding-method modified_beam_search|greedy_search] [--stage N] [--stop-stage N]
#  stage 1: export-onnx.py for every subnet into <exp-dir>/onnx/: fp32, int8 (onnxruntime
#           dynamic quantization; for the float subnet this is post-training int8 of the
#           float model) and int8-codes (the subnet's own LSQ codes), plus its .aio file
#  stage 2: decode.py of those subnets (torch, stored features, one thread)
#  stage 3: onnx_decode.py --engine sherpa-onnx of every subnet and variant (its own fbank
#           from the audio, one thread)
#  stage 4: the table (exp_comparisons/onnx/comparison.md)
# Needs ./prepare.sh to have run and a trained checkpoint (e.g. run_all_in_one.sh's one pass).
set -euo pipefail
# The body is one block that bash parses before running it, so editing this file while a
# long run of it goes on cannot change or break that run (bash reads scripts as it goes).
{

stage=1
stop_stage=4
exp_dir=""
epoch=""
avg=1
subnets="d6-w1.0-b32 d4-w1.0-b32 d6-w1.0-b8 d4-w0.5-b8 d6-w1.0-b4 d6-w1.0-b2"
decoding_method=modified_beam_search
recipe=conformer_transducer

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$script_dir"
. ../../../utils/parse_options.sh

log() { echo "$(date '+%Y-%m-%d %H:%M:%S') (run_onnx.sh:${BASH_LINENO[0]}) $*"; }
if [ -z "$exp_dir" ] || [ -z "$epoch" ]; then
  echo "$0: --exp-dir and --epoch are required" >&2
  exit 1
fi
onnx_dir=$exp_dir/onnx
out_dir=$recipe/exp_comparisons/onnx$(basename "$exp_dir" | sed 's/^exp//')

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  for s in $subnets; do
    log "stage 1: export $s"
    ./$recipe/export-onnx.py --exp-dir "$exp_dir" --epoch "$epoch" --avg "$avg" --subnet "$s" --out-dir "$onnx_dir"
  done
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  log "stage 2: torch decoding"
  ./$recipe/decode.py --exp-dir "$exp_dir" --epoch "$epoch" --avg "$avg" \
    --decoding-method "$decoding_method" --subnets "$(echo $subnets | tr ' ' ',')"
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  for s in $subnets; do
    for variant in fp32 int8 int8-codes; do
      [ -f "$onnx_dir/encoder-$s.$variant.onnx" ] || [ "$variant" = fp32 ] || continue
      log "stage 3: sherpa-onnx $s $variant"
      ./$recipe/onnx_decode.py --onnx-dir "$onnx_dir" --subnet "$s" --variant "$variant" \
        --engine sherpa-onnx --decoding-method "$decoding_method"
    done
  done
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  log "stage 4: table"
  ../../../local/compare_onnx.py --exp-dir "$exp_dir" --epoch "$epoch" --onnx-dir "$onnx_dir" \
    --subnets "$(echo $subnets | tr ' ' ',')" --decoding-method "$decoding_method" --out-dir "$out_dir"
fi

exit
}
