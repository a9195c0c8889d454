#!/usr/bin/env bash
# Wheels for the GPU check on a machine without PyPI: run this where PyPI is reachable, carry the folder along, and
# tests/gpu/check.sh installs from it offline (pip install --no-index --find-links DIR) before the check.
#   bash tests/gpu/wheels.sh [DIR [PYTHON_VERSION [PLATFORM]]]
#   defaults: tests/gpu/wheels, 3.12 (CPython), manylinux2014_x86_64,manylinux_2_28_x86_64 (PLATFORM: a comma-separated
#   list of pip --platform tags; some wheels, e.g. contourpy's, exist for manylinux_2_28 only, so the target needs
#   glibc >= 2.28: RHEL 8, Ubuntu 20.04 and later). The folder stays under 60 MB (checked).
#
# Which packages: every distribution that check.py needs and that is not torch, transformers, accelerate or peft
# (nor something those need: a GPU machine with them has it). Found with the project's venv (make install):
#  1. the third-party imports of check.py and of every eotd module it reaches (read from the source, including
#     imports inside functions; those inside `try: ... except ImportError` are optional and left out, e.g. vllm);
#  2. of their distributions, those that the CPU part of check.py really loads (its imports, the GSM-Symbolic data,
#     the annotation teacher, the tiny tokenizer), so a lazy import on a path check.py never takes (datasets for the
#     hub, httpx for the OpenAI teacher) does not drag pyarrow and pandas in;
#  3. with everything they require, at the versions installed in the venv, less the closure of the four above.
set -euo pipefail
cd "$(dirname "$0")/../.."
DIR="${1:-tests/gpu/wheels}"
PYVER="${2:-3.12}"
PLATFORM="${3:-manylinux2014_x86_64,manylinux_2_28_x86_64}"
PLATFORM_ARGS=()
for tag in ${PLATFORM//,/ }; do PLATFORM_ARGS+=(--platform "$tag"); done
LIMIT_MB=60
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] && PY=.venv/bin/python

REQS="$(mktemp)"
trap 'rm -f "$REQS" "$REQS.err"' EXIT
EOTD_CACHE_DIR="$(mktemp -d)" "$PY" - > "$REQS" <<'EOF'
import ast
import os
import shutil
import sys
from importlib.metadata import PackageNotFoundError, distribution, packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

EXCLUDE = ["torch", "transformers", "accelerate", "peft"]
ROOT = Path.cwd()
CHECK = ROOT / "tests" / "gpu" / "check.py"


def imports(path: Path):
    """Absolute import names in a file, less those guarded by `except ImportError` (optional)."""
    tree = ast.parse(path.read_text())
    optional = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
                isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                for h in node.handlers):
            optional.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    for node in ast.walk(tree):
        if id(node) in optional:
            continue
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
            yield from (f"{node.module}.{a.name}" for a in node.names)


def source_imports() -> set[str]:
    """Top-level third-party names imported by check.py and the eotd modules it reaches."""
    seen, todo, third = set(), [CHECK], set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imports(path):
            parts = name.split(".")
            if parts[0] != "eotd":
                if parts[0] not in sys.stdlib_module_names:
                    third.add(parts[0])
                continue
            for i in range(1, len(parts) + 1):  # eotd/__init__.py, eotd/a/__init__.py, eotd/a/b.py
                base = ROOT / "src" / Path(*parts[:i])
                todo += [p for p in (base / "__init__.py", base.with_suffix(".py")) if p.exists()]
            if parts[:2] == ["eotd", "sandbox"]:  # runs eotd._sandbox_worker in a subprocess
                todo.append(ROOT / "src" / "eotd" / "_sandbox_worker.py")
    return third


def loaded_by_check() -> set[str]:
    """Top-level modules loaded by the CPU part of check.py (everything but training and generation on CUDA)."""
    sys.path.insert(0, str(CHECK.parent))
    import check  # noqa: F401 - its imports

    from eotd import models, protocol
    from eotd.data import load_gsm_symbolic
    from eotd.teachers.annotation import rationale_rows

    rationale_rows(load_gsm_symbolic(20, seed=0))
    [protocol.student_input(p.question, "pot") for p in load_gsm_symbolic(20, seed=1)]
    models.resolve("tiny-llama")
    shutil.rmtree(os.environ["EOTD_CACHE_DIR"], ignore_errors=True)
    return {m.split(".")[0] for m in list(sys.modules)}


def requires(name: str) -> list[str]:
    try:
        dist = distribution(name)
    except PackageNotFoundError:
        return []
    reqs = [Requirement(r) for r in dist.requires or []]
    return [canonicalize_name(r.name) for r in reqs if not r.marker or r.marker.evaluate({"extra": ""})]


def closure(names) -> set[str]:
    seen, todo = set(), [canonicalize_name(n) for n in names]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += requires(name)
    return seen


by_module = packages_distributions()


def dists(modules) -> set[str]:
    return {canonicalize_name(d) for m in modules for d in by_module.get(m, [])}


present = closure(EXCLUDE)
candidates = closure(dists(source_imports())) - present
needed = closure(dists(loaded_by_check()) & candidates) - present - {"eotd"}
for name in sorted(needed):
    print(f"{name}=={distribution(name).version}")
EOF

echo "[wheels] $(wc -l < "$REQS") distributions for tests/gpu/check.py (CPython $PYVER, $PLATFORM) -> $DIR:"
sed 's/^/  /' "$REQS"
mkdir -p "$DIR"
cp "$REQS" "$DIR/requirements.txt"
while read -r req; do
    if ! "$PY" -m pip download -q --dest "$DIR" --no-deps --only-binary=:all: --python-version "$PYVER" \
            --implementation cp "${PLATFORM_ARGS[@]}" "$req" 2> "$REQS.err"; then
        # No wheel on PyPI (an sdist only): build one here; fine when it is pure Python (py3-none-any).
        built="$(mktemp -d)"
        "$PY" -m pip wheel -q --no-deps --wheel-dir "$built" "$req" 2>> "$REQS.err" || { cat "$REQS.err" >&2; exit 1; }
        if ls "$built"/*.whl | grep -q -- '-none-any\.whl$'; then
            echo "[wheels] $req: built $(basename "$built"/*.whl) from its sdist (pure Python)"
            mv "$built"/*.whl "$DIR"/
        else
            # A C extension with no wheel at all (pycosat): its sdist, compiled by pip on the target (a C compiler
            # and Python.h needed there), with setuptools for pip's isolated build.
            "$PY" -m pip download -q --dest "$DIR" --no-deps --no-binary=:all: "$req" 2>> "$REQS.err" \
                || { cat "$REQS.err" >&2; exit 1; }
            echo "[wheels] $req: no wheel for CPython $PYVER ($PLATFORM): its sdist, compiled on the target"
            NEED_BUILD=1
        fi
        rm -rf "$built"
    fi
done < "$REQS"
if [ -n "${NEED_BUILD:-}" ]; then
    # pip's build environment: setuptools and wheel (an older pip asks for wheel too), with what they require
    "$PY" -m pip download -q --dest "$DIR" --only-binary=:all: --python-version "$PYVER" --implementation cp \
        "${PLATFORM_ARGS[@]}" "setuptools==$("$PY" -c 'import setuptools; print(setuptools.__version__)')" wheel \
        2>> "$REQS.err" || { cat "$REQS.err" >&2; exit 1; }
fi
rm -f "$REQS.err"
size_kb=$(du -sk "$DIR" | cut -f1)
echo "[wheels] $DIR: $(ls "$DIR" | grep -cv '^requirements.txt$') files, $((size_kb / 1024)) MB;" \
    "bash tests/gpu/check.sh $DIR installs them offline"
if [ "$size_kb" -ge $((LIMIT_MB * 1024)) ]; then
    echo "[wheels] over the ${LIMIT_MB} MB limit" >&2
    exit 1
fi
