#!/usr/bin/env bash
# Data preparation for LibriSpeech (https://www.openslr.org/12).
#
# Stages:
#   0  find the corpus in $dl_dir/LibriSpeech (a copy or a symlink; with --download true
#      it is downloaded with lhotse first)
#   1  lhotse manifests of every part found, into data/manifests/
#   2  80-dim fbank (lilcom chunks) and cut sets in data/fbank/; training parts also get
#      0.9x / 1.1x speed-perturbed copies (--perturb-speed true); MUSAN's music and noise
#      (for train.py --enable-musan) when --musan-dir holds MUSAN (--download true fetches it)
#   3  sentencepiece BPE model and data/lang_bpe_${vocab_size}/ from the training transcripts
#   4  word 3-gram: --arpa FILE when given (e.g. openslr's 3-gram.pruned.1e-7.arpa), else
#      trained on the training transcripts
#   5  CTC decoding graphs (H, HL, HLG) with kaldifst in the lang dir
#
# Every stage leaves a .done file behind and is skipped when re-run.
#
# Usage: ./prepare.sh [--stage N] [--stop-stage N] [--dl-dir DIR] [--download false] [--musan-dir DIR]
#                     [--vocab-size 500] [--perturb-speed true] [--arpa FILE] [--nj N]
set -eou pipefail
{

stage=0
stop_stage=100
dl_dir=download
download=false
musan_dir=download/musan
vocab_size=500
perturb_speed=true
arpa=""
nj=4

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$script_dir"
. ../../../utils/parse_options.sh

prefix=librispeech
corpus=$dl_dir/LibriSpeech
manifest_dir=data/manifests
fbank_dir=data/fbank
lang_dir=data/lang_bpe_${vocab_size}
lm_dir=data/lm
all_parts="train-clean-100 train-clean-360 train-other-500 dev-clean dev-other test-clean test-other"

log() { echo "$(date '+%Y-%m-%d %H:%M:%S') (prepare.sh:${BASH_LINENO[0]}) $*"; }
run_stage() { [[ $stage -le $1 && $stop_stage -ge $1 ]]; }

if run_stage 0; then
  if [[ ! -d $corpus ]]; then
    if [[ $download == true ]]; then
      log "Stage 0: downloading LibriSpeech into $dl_dir"
      lhotse download librispeech --full "$dl_dir"
      [[ -d $musan_dir ]] || lhotse download musan "$(dirname "$musan_dir")"
    else
      echo "prepare.sh: $corpus not found: put (or symlink) the corpus there, or run with --download true" >&2
      exit 1
    fi
  fi
fi
parts=""
train_parts=""
for part in $all_parts; do
  if [[ -d $corpus/$part ]]; then
    parts="$parts $part"
    if [[ $part == train-* ]]; then train_parts="${train_parts:+$train_parts }$part"; fi
  fi
done
log "parts found:$parts"

if run_stage 1 && [[ ! -f $manifest_dir/.${prefix}.done ]]; then
  log "Stage 1: lhotse manifests into $manifest_dir"
  mkdir -p "$manifest_dir"
  lhotse prepare librispeech -j "$nj" "$corpus" "$manifest_dir"
  touch "$manifest_dir/.${prefix}.done"
fi

if run_stage 2 && [[ ! -f $fbank_dir/.${prefix}.done ]]; then
  log "Stage 2: fbank into $fbank_dir"
  mkdir -p "$fbank_dir"
  perturb=""
  [[ $perturb_speed == true ]] && perturb=$train_parts
  # shellcheck disable=SC2086
  python ../../../local/compute_fbank.py --manifest-dir "$manifest_dir" --output-dir "$fbank_dir" \
    --prefix $prefix --splits $parts --num-jobs "$nj" --perturb-speed-splits $perturb
  if [[ $train_parts == "train-clean-100 train-clean-360 train-other-500" ]]; then
    # the 960 h set: the three training parts in one file, read lazily by train.py
    python - "$fbank_dir" <<'PY'
import sys
from pathlib import Path
from lhotse import CutSet
from allinone.data.features import write_cuts_atomically
d = Path(sys.argv[1])
names = ("train-clean-100", "train-clean-360", "train-other-500")
parts = [CutSet.from_jsonl_lazy(d / f"librispeech_cuts_{p}.jsonl.gz") for p in names]
# interleaved at random (in proportion to the parts' sizes), so a lazy reader sees all three
write_cuts_atomically(CutSet.mux(*parts, seed=0), d / "librispeech_cuts_train-960.jsonl.gz")
PY
  fi
  ../../../local/prepare_musan.sh "$musan_dir" "$manifest_dir" "$fbank_dir" "$nj"
  touch "$fbank_dir/.${prefix}.done"
fi

if run_stage 3 && [[ ! -f $lang_dir/.done ]]; then
  log "Stage 3: BPE model and $lang_dir"
  mkdir -p "$lang_dir"
  # shellcheck disable=SC2086
  python - "$manifest_dir" "$lang_dir/transcript_words.txt" $train_parts <<'PY'
import sys
from lhotse import SupervisionSet
src, dst, parts = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(dst, "w", encoding="utf-8") as f:
    for part in parts:
        for sup in SupervisionSet.from_file(f"{src}/librispeech_supervisions_{part}.jsonl.gz"):
            f.write(sup.text.strip() + "\n")
PY
  python ../../../local/train_bpe.py --transcript "$lang_dir/transcript_words.txt" \
    --lang-dir "$lang_dir" --vocab-size "$vocab_size"
  python ../../../local/prepare_lang_bpe.py --lang-dir "$lang_dir"
  touch "$lang_dir/.done"
fi

if run_stage 4; then
  log "Stage 4: word 3-gram (${arpa:-trained on the training transcripts})"
  ../../../local/prepare_word_lm.sh "$lm_dir/G_3_gram.arpa" "$arpa" "$lang_dir/transcript_words.txt"
fi

if run_stage 5 && [[ ! -f $lang_dir/.graphs.done ]]; then
  log "Stage 5: H, HL and HLG in $lang_dir"
  python ../../../local/prepare_ctc_graphs.py --lang-dir "$lang_dir" --arpa "$lm_dir/G_3_gram.arpa"
  touch "$lang_dir/.graphs.done"
fi

log "Done (stages $stage..$stop_stage)"
exit
}
