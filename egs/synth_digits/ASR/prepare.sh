#!/usr/bin/env bash
# Data preparation for the synthetic connected-digits corpus (synth_digits).
#
# Stages:
#   0  check that espeak-ng, flite, festival (+ kal/ked diphone voices) and sox
#      are installed; as root they are installed with apt-get
#   1  synthesise the corpus into download/synth_digits/ and write lhotse
#      manifests to data/manifests/ (splits: train dev test-seen test-unseen, and
#      dev-unseen (held-out voices for recipe choices) and test-unseen-8k (unseen
#      voices through a telephone line); local/generate_corpus.py describes them)
#   2  80-dim fbank features (lilcom-compressed) and cut sets in data/fbank/,
#      channel copies of the training cuts (telephone, microphone: *_train-<kind>),
#      then duration statistics per split
#   3  sentencepiece BPE model and data/lang_bpe_${vocab_size}/ (bpe.model,
#      tokens.txt, words.txt, lexicon.txt, transcript_words.txt)
#   4  word ${lm_order}-gram LM (interpolated Kneser-Ney) on the training
#      transcripts: data/lm/G_${lm_order}_gram.arpa
#   5  CTC decoding graphs with kaldifst in the lang dir: lexicon_disambig.txt,
#      tokens.txt with #k, L.fst, L_disambig.fst, G.fst, H.fst, HL.fst, HLG.fst
#
# Every stage leaves a .done file behind and is skipped when re-run; delete
# the file (or the directory) to redo a stage.
#
# Usage: ./prepare.sh [--stage N] [--stop-stage N] [--seed S] [--num-train N]
#                     [--num-dev N] [--num-test N] [--vocab-size N] [--nj N]
#                     [--lm-order N] [--train-variety true|false]

set -eou pipefail
# The body is one block that bash parses before running it, so editing this file while a
# long run of it goes on cannot change or break that run (bash reads scripts as it goes).
{

stage=0
stop_stage=100
seed=42
num_train=4000
num_dev=300
num_test=300
# 11 words over 15 letters: from 64 pieces on every digit word is a single
# piece, so the transducer emits one token per spoken word.
vocab_size=64
nj=2
lm_order=3
# true: a training set with more voices, single words and channels (RESULTS.md)
train_variety=false

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/../../.." && pwd)
cd "$script_dir"

. ../../../utils/parse_options.sh

export PYTHONPATH="$repo_root${PYTHONPATH:+:$PYTHONPATH}"

prefix=synth_digits
splits="train dev test-seen test-unseen dev-unseen test-unseen-8k"
dl_dir=download/synth_digits
manifest_dir=data/manifests
fbank_dir=data/fbank
lang_dir=data/lang_bpe_${vocab_size}
lm_dir=data/lm

log() {
  # Timestamp, then the file and line of the caller.
  local caller_file=${BASH_SOURCE[1]##*/}
  local caller_line=${BASH_LINENO[0]}
  echo "$(date '+%Y-%m-%d %H:%M:%S') ($caller_file:$caller_line) $*"
}

run_stage() {
  # True when stage $1 lies within [stage, stop_stage].
  [[ $stage -le $1 && $stop_stage -ge $1 ]]
}

log "repo root: $repo_root"
log "stage=$stage stop_stage=$stop_stage seed=$seed num_train=$num_train num_dev=$num_dev" \
  "num_test=$num_test vocab_size=$vocab_size nj=$nj"

if run_stage 0; then
  log "Stage 0: check the TTS and audio tools"
  missing=""
  for tool in espeak-ng flite festival sox; do
    command -v "$tool" > /dev/null 2>&1 || missing="$missing $tool"
  done
  for voice in kal_diphone ked_diphone; do
    [[ -d /usr/share/festival/voices/english/$voice ]] || missing="$missing festival:$voice"
  done
  install_cmd="apt-get update && apt-get install -y espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k sox"
  if [[ -n $missing ]]; then
    if [[ $(id -u) -eq 0 ]]; then
      log "Missing:$missing -- installing with: $install_cmd"
      apt-get update
      apt-get install -y espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k sox
    else
      log "Missing:$missing. Install them (as root) with:"
      echo "$install_cmd"
      exit 1
    fi
  fi
  log "Stage 0: espeak-ng $(espeak-ng --version | awk '{print $4; exit}'), flite voices:" \
    "$(flite -lv | sed 's/Voices available: *//')"
fi

if run_stage 1; then
  log "Stage 1: synthesise the corpus into $dl_dir, manifests into $manifest_dir"
  start=$SECONDS
  if [[ ! -f $manifest_dir/.${prefix}.done ]]; then
    mkdir -p "$manifest_dir"
    python local/generate_corpus.py \
      --out-dir "$dl_dir" \
      --manifest-dir "$manifest_dir" \
      --seed "$seed" \
      --num-train "$num_train" \
      --num-dev "$num_dev" \
      --num-test "$num_test" \
      --train-variety "$train_variety" \
      --num-jobs "$nj"
    touch "$manifest_dir/.${prefix}.done"
  else
    log "Stage 1: $manifest_dir/.${prefix}.done exists, skipping"
  fi
  log "Stage 1: took $((SECONDS - start)) s"
fi

if run_stage 2; then
  log "Stage 2: compute fbank features into $fbank_dir"
  start=$SECONDS
  if [[ ! -f $fbank_dir/.${prefix}.done ]]; then
    mkdir -p "$fbank_dir"
    # shellcheck disable=SC2086  # $splits is a word list on purpose
    python ../../../local/compute_fbank.py \
      --manifest-dir "$manifest_dir" \
      --output-dir "$fbank_dir" \
      --prefix "$prefix" \
      --splits $splits \
      --num-jobs "$nj"
    touch "$fbank_dir/.${prefix}.done"
  else
    log "Stage 2: $fbank_dir/.${prefix}.done exists, skipping"
  fi
  # The training cuts through a telephone line and through a microphone, one random channel
  # each; train.py --channel-copy-prob hears a cut as one of them (skipped when present).
  python ../../../local/compute_channel_copies.py \
    --cuts "$fbank_dir/${prefix}_cuts_train.jsonl.gz" \
    --feats-prefix "$fbank_dir/${prefix}_feats_train" \
    --seed "$seed" \
    --num-jobs "$nj"
  # shellcheck disable=SC2086
  python ../../../local/display_manifest_statistics.py \
    --manifest-dir "$fbank_dir" --prefix "$prefix" --splits $splits
  log "Stage 2: took $((SECONDS - start)) s"
fi

if run_stage 3; then
  log "Stage 3: BPE model and lang dir $lang_dir"
  start=$SECONDS
  if [[ ! -f $lang_dir/.done ]]; then
    mkdir -p "$lang_dir"
    # Training transcripts, one utterance per line.
    python - "$manifest_dir/${prefix}_supervisions_train.jsonl.gz" "$lang_dir/transcript_words.txt" <<'EOF'
import sys
from lhotse import SupervisionSet

src, dst = sys.argv[1], sys.argv[2]
with open(dst, "w", encoding="utf-8") as f:
    for sup in SupervisionSet.from_file(src):
        f.write(sup.text.strip() + "\n")
EOF
    python ../../../local/train_bpe.py \
      --transcript "$lang_dir/transcript_words.txt" \
      --lang-dir "$lang_dir" \
      --vocab-size "$vocab_size"
    python ../../../local/prepare_lang_bpe.py --lang-dir "$lang_dir"
    touch "$lang_dir/.done"
  else
    log "Stage 3: $lang_dir/.done exists, skipping"
  fi
  log "Stage 3: lexicon of $lang_dir:"
  cat "$lang_dir/lexicon.txt"
  log "Stage 3: took $((SECONDS - start)) s"
fi

if run_stage 4; then
  log "Stage 4: ${lm_order}-gram word LM into $lm_dir"
  arpa=$lm_dir/G_${lm_order}_gram.arpa
  if [[ ! -f $arpa ]]; then
    python ../../../local/train_ngram_lm.py \
      --text "$lang_dir/transcript_words.txt" --order "$lm_order" --out "$arpa"
  else
    log "Stage 4: $arpa exists, skipping"
  fi
fi

if run_stage 5; then
  log "Stage 5: H, HL and HLG in $lang_dir"
  if [[ ! -f $lang_dir/.graphs.done ]]; then
    python ../../../local/prepare_ctc_graphs.py \
      --lang-dir "$lang_dir" --arpa "$lm_dir/G_${lm_order}_gram.arpa"
    touch "$lang_dir/.graphs.done"
  else
    log "Stage 5: $lang_dir/.graphs.done exists, skipping"
  fi
fi

log "Done (stages $stage..$stop_stage)"
exit
}
