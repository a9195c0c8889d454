"""run.json beside every stage's outputs: params, seed, package versions, git commit and input hashes."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Iterable

from eotd import paths
from eotd.params import Params
from eotd.records import write_json

PACKAGES = ("eotd", "torch", "transformers", "datasets", "accelerate", "peft", "sympy", "reasoning-gym", "papermill")


def file_hash(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=paths.ROOT, capture_output=True, text=True, timeout=10)
        # the run's own outputs under results/ do not make the code it ran "dirty"
        dirty = subprocess.run(["git", "status", "--porcelain", "--", ".", ":!results"], cwd=paths.ROOT,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def versions() -> dict[str, str | None]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def write_run_json(out_dir: str | Path, stage: str, params: Params, inputs: Iterable[str | Path] = (), **extra) -> Path:
    """Record in <out_dir>/run.json what produced a stage's outputs (one entry per stage), so any number can be traced."""
    path = Path(out_dir) / "run.json"
    stages = json.loads(path.read_text())["stages"] if path.exists() else {}
    stages[stage] = {
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "params": params.to_dict(),
        "seed": params.seed,
        "git_commit": git_commit(),
        "data_dir": paths.relative(os.environ["EOTD_DATA_DIR"]) if os.environ.get("EOTD_DATA_DIR") else None,  # None: the HF hub
        "versions": versions(),
        "inputs": {paths.relative(p): file_hash(p) for p in inputs},
        **extra,
    }
    return write_json(path, {"params_name": params.name, "stages": stages})
