#!/usr/bin/env bash
# The GPU check (not part of `make test`, CI has no GPU): trains and evaluates a model built from a config on CUDA
# and prints tokens/s; see tests/gpu/check.py. Run from the repository root on a machine with a GPU:
#   bash tests/gpu/check.sh [WHEELS_DIR]
# Without the project's .venv (a GPU machine with torch, transformers and accelerate but no PyPI), the rest of what
# check.py imports is installed offline from WHEELS_DIR (default tests/gpu/wheels, written by tests/gpu/wheels.sh)
# into .cache/gpu-site, and eotd is used from src/.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] && PY=.venv/bin/python
WHEELS="${1:-tests/gpu/wheels}"
if [ -n "${1:-}" ] && [ ! -f "$WHEELS/requirements.txt" ]; then
    echo "no $WHEELS/requirements.txt: write the folder with bash tests/gpu/wheels.sh $WHEELS" >&2
    exit 2
fi
if [ "$PY" != .venv/bin/python ] && [ -f "$WHEELS/requirements.txt" ]; then
    "$PY" -m pip install -q --no-index --find-links "$WHEELS" --no-deps --use-pep517 --upgrade --target .cache/gpu-site \
        -r "$WHEELS/requirements.txt"
    export PYTHONPATH="$PWD/.cache/gpu-site:$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
fi
timeout 300 "$PY" tests/gpu/check.py
