#!/usr/bin/env bash
# The word 3-gram of a recipe's HLG graph: a copy of a given ARPA file (e.g. openslr's
# 3-gram.pruned.1e-7.arpa), else an interpolated Kneser-Ney 3-gram trained on the text files
# given (one utterance per line). An existing OUT.arpa is kept when no ARPA is given.
#
# Usage (from a recipe directory): ../../../local/prepare_word_lm.sh OUT.arpa GIVEN.arpa|"" TEXT [TEXT ...]
set -euo pipefail
out=$1
given=$2
shift 2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$(dirname "$out")"
if [[ -n $given ]]; then
  [[ -f $given ]] || { echo "prepare_word_lm.sh: --arpa $given does not exist" >&2; exit 1; }
  cp "$given" "$out"
elif [[ ! -f $out ]]; then
  text=$(dirname "$out")/lm_text.txt
  cat "$@" > "$text"
  python "$here/train_ngram_lm.py" --text "$text" --order 3 --out "$out"
fi
