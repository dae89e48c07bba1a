#!/usr/bin/env bash
# Install everything the recipes and tests need: Debian TTS/audio tools and the
# pinned Python packages. Safe to re-run; skips what is already there.
#
# Usage: bash utils/install_deps.sh
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

apt_pkgs="espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k sox"
missing=""
for tool in espeak-ng flite festival text2wave sox; do
  command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
for voice in kal_diphone ked_diphone; do
  ls /usr/share/festival/voices/english/"$voice" >/dev/null 2>&1 || missing="$missing festvox-$voice"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing Debian packages (missing:$missing)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq $apt_pkgs >/dev/null
  else
    echo "missing:$missing" >&2
    echo "run as root: apt-get update && apt-get install -y $apt_pkgs" >&2
    exit 1
  fi
fi

# pip takes seconds even when nothing is to be done: skip it when every pin is met and
# allinone is installed from this checkout (-I: the working directory does not count).
if python3 -I "$repo/utils/deps_satisfied.py" "$repo" >/dev/null 2>&1; then
  exit 0
fi
if ! python3 -c "import torch; assert torch.__version__.startswith('2.13.0')" 2>/dev/null; then
  # Installed on its own first so that no other requirement can pull a CUDA build.
  python3 -m pip install -q torch==2.13.0
fi
python3 -m pip install -q -r "$repo/requirements.txt"
python3 -m pip install -q --no-deps -e "$repo"
