#!/usr/bin/env bash
# Data preparation for Switchboard-1 (LDC97S62, about 300 h) with eval2000 (LDC2002S09 audio,
# LDC2002T43 references) as the test set, through lhotse's switchboard and eval2000 recipes.
#
# Corpus locations (copies or symlinks; LDC corpora need a subscription):
#   --swbd1-dir          download/LDC97S62            *.sph conversations, 8 kHz, 2 channels
#   --transcript-dir     download/swb_ms98_transcriptions   ISIP's ms98 word transcripts
#                        (with --download true lhotse fetches them from ISIP when absent)
#   --eval2000-dir       download/eval2000            holding LDC2002S09/ and LDC2002T43/
#   --fisher-dirs        ""                           optional Fisher transcript dirs (LM text)
#   --musan-dir          download/musan               optional; noise for --enable-musan
# The .sph files are read through sph2pipe, as lhotse's recipe does it: put it on PATH or
# run `lhotse install-sph2pipe` (RT03 is not prepared: lhotse has no recipe for it).
#
# Stages:
#   0  check the corpora and sph2pipe
#   1  lhotse manifests of Switchboard and eval2000 into data/manifests/
#   2  splits: text cleaned (markup and non-speech out, hesitations and fragments kept),
#      --dev-conversations held out of training as dev, eval2000
#   3  80-dim fbank at 16 kHz (the 8 kHz audio resampled, one cut per segment and channel),
#      0.9x / 1.1x copies of train (--perturb-speed true), eval2000's Switchboard and
#      CallHome halves as test sets of their own; MUSAN's music and noise when found
#   4  sentencepiece BPE model and data/lang_bpe_${vocab_size}/ from the training transcripts
#      (with Fisher's words in the lexicon when --fisher-dirs is given)
#   5  word 3-gram: --arpa FILE when given, else trained on the training transcripts
#      (+ Fisher's with --fisher-dirs)
#   6  CTC decoding graphs (H, HL, HLG) with kaldifst in the lang dir
#
# Every stage leaves a .done file behind and is skipped when re-run.
#
# Usage: ./prepare.sh [--stage N] [--stop-stage N] [--swbd1-dir DIR] [--transcript-dir DIR]
#                     [--eval2000-dir DIR] [--fisher-dirs "DIR ..."] [--musan-dir DIR]
#                     [--download false] [--dev-conversations 25] [--vocab-size 500]
#                     [--perturb-speed true] [--arpa FILE] [--nj N]
set -eou pipefail
{

stage=0
stop_stage=100
swbd1_dir=download/LDC97S62
transcript_dir=download/swb_ms98_transcriptions
eval2000_dir=download/eval2000
fisher_dirs=""
musan_dir=download/musan
download=false
dev_conversations=25
vocab_size=500
perturb_speed=true
arpa=""
nj=4

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$script_dir"
. ../../../utils/parse_options.sh

prefix=swbd
manifest_dir=data/manifests
fbank_dir=data/fbank
lang_dir=data/lang_bpe_${vocab_size}
lm_dir=data/lm

log() { echo "$(date '+%Y-%m-%d %H:%M:%S') (prepare.sh:${BASH_LINENO[0]}) $*"; }
die() { echo "prepare.sh: $*" >&2; exit 1; }
run_stage() { [[ $stage -le $1 && $stop_stage -ge $1 ]]; }

if run_stage 0; then
  [[ -d $swbd1_dir ]] || die "$swbd1_dir not found: put (or symlink) Switchboard-1 (LDC97S62) there, or pass --swbd1-dir"
  if [[ ! -d $transcript_dir && $download != true ]]; then
    die "$transcript_dir not found: put ISIP's swb_ms98_transcriptions there, or run with --download true"
  fi
  for sub in LDC2002S09/hub5e_00/english LDC2002T43/reference/english; do
    [[ -d $eval2000_dir/$sub ]] || die "$eval2000_dir/$sub not found: eval2000 (LDC2002S09 + LDC2002T43) goes under --eval2000-dir"
  done
  for d in $fisher_dirs; do [[ -d $d ]] || die "--fisher-dirs: $d not found"; done
  if [[ $stop_stage -ge 1 && $stage -le 3 ]] && ! command -v sph2pipe >/dev/null \
    && [[ ! -x $HOME/.lhotse/tools/sph2pipe-2.5/sph2pipe ]]; then
    die "sph2pipe not found (it reads the .sph audio): run 'lhotse install-sph2pipe' or put sph2pipe on PATH"
  fi
fi

if run_stage 1 && [[ ! -f $manifest_dir/.${prefix}.done ]]; then
  log "Stage 1: lhotse manifests into $manifest_dir"
  mkdir -p "$manifest_dir"
  if [[ ! -d $transcript_dir ]]; then
    log "downloading ISIP's Switchboard transcripts into $(dirname "$transcript_dir")"
    python -c "import sys; from lhotse.recipes.switchboard import download_and_untar as d; d(sys.argv[1])" \
      "$(dirname "$transcript_dir")"
  fi
  lhotse prepare switchboard --absolute-paths true --omit-silence --transcript-dir "$transcript_dir" \
    "$swbd1_dir" "$manifest_dir"
  lhotse prepare eval2000 --absolute-paths true "$eval2000_dir" "$manifest_dir"
  touch "$manifest_dir/.${prefix}.done"
fi

if run_stage 2 && [[ ! -f $manifest_dir/.${prefix}.splits.done ]]; then
  log "Stage 2: train / dev / eval2000 splits"
  python local/prepare_splits.py --manifest-dir "$manifest_dir" --dev-conversations "$dev_conversations"
  touch "$manifest_dir/.${prefix}.splits.done"
fi

if run_stage 3 && [[ ! -f $fbank_dir/.${prefix}.done ]]; then
  log "Stage 3: fbank into $fbank_dir"
  perturb=""
  [[ $perturb_speed == true ]] && perturb=train
  # shellcheck disable=SC2086
  python ../../../local/compute_fbank.py --manifest-dir "$manifest_dir" --output-dir "$fbank_dir" \
    --prefix $prefix --splits train dev eval2000 --num-jobs "$nj" --trim-to-supervisions true \
    --resample true --perturb-speed-splits $perturb
  # eval2000 is two test sets reported apart: 20 Switchboard (sw_*) and 20 CallHome (en_*) calls
  python - "$fbank_dir" <<'PY'
import sys
from pathlib import Path
from lhotse import CutSet
from allinone.data.features import write_cuts_atomically
d = Path(sys.argv[1])
cuts = CutSet.from_file(d / "swbd_cuts_eval2000.jsonl.gz")
for name, prefix in (("eval2000-swbd", "sw"), ("eval2000-callhome", "en")):
    write_cuts_atomically(cuts.filter(lambda c: c.recording_id.startswith(prefix)).to_eager(),
                          d / f"swbd_cuts_{name}.jsonl.gz")
PY
  ../../../local/prepare_musan.sh "$musan_dir" "$manifest_dir" "$fbank_dir" "$nj"
  touch "$fbank_dir/.${prefix}.done"
fi

if run_stage 4 && [[ ! -f $lang_dir/.done ]]; then
  log "Stage 4: BPE model and $lang_dir"
  mkdir -p "$lang_dir" "$lm_dir"
  python - "$manifest_dir/swbd_supervisions_train.jsonl.gz" "$lang_dir/transcript_words.txt" <<'PY'
import sys
from lhotse import SupervisionSet
with open(sys.argv[2], "w", encoding="utf-8") as f:
    for sup in SupervisionSet.from_file(sys.argv[1]):
        f.write(sup.text.strip() + "\n")
PY
  extra=()
  if [[ -n $fisher_dirs ]]; then
    # shellcheck disable=SC2086
    python local/fisher_text.py --out "$lm_dir/fisher_text.txt" $fisher_dirs
    extra=(--extra-text "$lm_dir/fisher_text.txt")
  fi
  python ../../../local/train_bpe.py --transcript "$lang_dir/transcript_words.txt" \
    --lang-dir "$lang_dir" --vocab-size "$vocab_size"
  python ../../../local/prepare_lang_bpe.py --lang-dir "$lang_dir" "${extra[@]}"
  touch "$lang_dir/.done"
fi

if run_stage 5; then
  texts=("$lang_dir/transcript_words.txt")
  if [[ -n $fisher_dirs ]]; then texts+=("$lm_dir/fisher_text.txt"); fi
  log "Stage 5: word 3-gram (${arpa:-trained on the training transcripts${fisher_dirs:+ and Fisher}})"
  ../../../local/prepare_word_lm.sh "$lm_dir/G_3_gram.arpa" "$arpa" "${texts[@]}"
fi

if run_stage 6 && [[ ! -f $lang_dir/.graphs.done ]]; then
  log "Stage 6: H, HL and HLG in $lang_dir"
  python ../../../local/prepare_ctc_graphs.py --lang-dir "$lang_dir" --arpa "$lm_dir/G_3_gram.arpa"
  touch "$lang_dir/.graphs.done"
fi

log "Done (stages $stage..$stop_stage)"
exit
}
