#!/usr/bin/env bash
# MUSAN's music and noise for `train.py --enable-musan`: lhotse manifests, then 10 s windows
# with 80-dim fbank in <fbank-dir>/musan_cuts.jsonl.gz (MUSAN's speech is left out). Does
# nothing but say so when the corpus is absent: noise mixing is optional.
#
# Usage (from a recipe directory): ../../../local/prepare_musan.sh MUSAN_DIR MANIFEST_DIR FBANK_DIR [NJ]
set -euo pipefail
musan_dir=$1
manifest_dir=$2
fbank_dir=$3
nj=${4:-2}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [[ ! -d $musan_dir ]]; then
  echo "prepare_musan.sh: no MUSAN at $musan_dir (openslr.org/17); training can run without --enable-musan"
  exit 0
fi
if [[ ! -f $manifest_dir/musan_recordings_noise.jsonl.gz ]]; then
  python -c "import sys; from lhotse.recipes.musan import prepare_musan as p; p(sys.argv[1], sys.argv[2], parts=('music', 'noise'))" \
    "$musan_dir" "$manifest_dir"
fi
python "$here/compute_fbank_musan.py" --manifest-dir "$manifest_dir" --output-dir "$fbank_dir" --num-jobs "$nj"
