#!/usr/bin/env bash
# The GPU check (not part of `make test`, CI has no GPU): trains and evaluates a model built from a config on CUDA
# and prints tokens/s; see tests/gpu/check.py. Run from the repository root on a machine with a GPU:
#   bash tests/gpu/check.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] && PY=.venv/bin/python
timeout 300 "$PY" tests/gpu/check.py
