#!/usr/bin/env bash
# Lint and run the whole test suite (installs dependencies first if needed).
#
# Usage: bash utils/run_tests.sh [extra pytest args]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
python3 -c "import torch, lhotse, sentencepiece, kaldialign, xdist" 2>/dev/null || bash utils/install_deps.sh
python3 -m ruff check .
python3 -m ruff format --check .
# Two workers, one per core (each test runs single-threaded, tests/conftest.py); a test file
# stays on one worker, so its module fixtures are built once.
python3 -m pytest -q -n 2 --dist loadfile tests "$@"
