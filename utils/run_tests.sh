#!/usr/bin/env bash
# Lint and run the whole test suite (installs dependencies first if needed).
#
# Usage: bash utils/run_tests.sh [extra pytest args]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
python3 -c "import torch, lhotse, sentencepiece, kaldialign" 2>/dev/null || bash utils/install_deps.sh
python3 -m ruff check .
python3 -m ruff format --check .
python3 -m pytest -q tests "$@"
