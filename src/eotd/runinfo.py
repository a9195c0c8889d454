"""run.json beside every stage's outputs: params, seed, package versions, git commit, input hashes, when it ran on
which machine, its peak memory, and the result files it wrote (so a study can remove what no stage of its run
wrote); and, while a study has stages left to finish, its `incomplete` mark."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Iterable

from eotd import machine, paths
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


def peak_rss_mb() -> int:
    """Peak resident memory so far, in MB, of this process plus its largest finished child (a student trained in a
    process of its own, a sandbox worker): the kernel's ru_maxrss (KB on Linux, bytes on macOS) for both, summed, so
    an upper bound of what the two held at once."""
    peak = sum(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return peak // (1024 * 1024 if sys.platform == "darwin" else 1024)


# Files of a results folder that belong to the study rather than to one stage.
STUDY_FILES = ("run.json", "stages.json", "report.html")


def _study_file(relative: Path) -> bool:
    """run.json, stages.json, report.html, html/ and the rendered notebooks NN_*.ipynb."""
    return (str(relative) in STUDY_FILES or relative.parts[0] == "html"
            or (relative.suffix == ".ipynb" and relative.name[:2].isdigit() and len(relative.parts) == 1))


MTIME_SLACK = 2.0  # seconds: file timestamps may lag the clock; claiming a file twice is harmless, missing one is not


def _stage_files(out_dir: Path) -> dict[str, Path]:
    """The files of `out_dir` a stage may have written (relative path -> path), study files left out."""
    return {str(f.relative_to(out_dir)): f for f in sorted(out_dir.rglob("*"))
            if f.is_file() and not _study_file(f.relative_to(out_dir))}


def written_since(out_dir: str | Path, started: datetime) -> list[str]:
    """The files of `out_dir` (relative paths, sorted) written since `started`, study files left out."""
    return [name for name, f in _stage_files(Path(out_dir)).items()
            if f.stat().st_mtime >= started.timestamp() - MTIME_SLACK]


def write_run_json(out_dir: str | Path, stage: str, params: Params, inputs: Iterable[str | Path] = (),
                   started: datetime | None = None, **extra) -> Path:
    """Record in <out_dir>/run.json what produced a stage's outputs (one entry per stage), so any number can be
    traced, and the peak resident memory of the process recording it (`peak_rss_mb`: a stage notebook's kernel);
    with `started`, also how long the stage took and the files it wrote since then (`results`)."""
    run = read_run(out_dir)
    finished = datetime.now(timezone.utc)
    entry = {"started": started.isoformat(timespec="seconds")} if started else {}
    entry["finished"] = finished.isoformat(timespec="seconds")
    if started:
        entry["seconds"] = round((finished - started).total_seconds(), 1)
    entry.update({
        "machine": machine.describe(),
        "peak_rss_mb": peak_rss_mb(),
        "params": params.to_dict(),
        "seed": params.seed,
        "git_commit": git_commit(),
        "data_dir": paths.relative(os.environ["EOTD_DATA_DIR"]) if os.environ.get("EOTD_DATA_DIR") else None,  # None: the HF hub
        "versions": versions(),
        "inputs": {paths.relative(p): file_hash(p) for p in inputs},
    })
    if started:
        entry["results"] = written_since(out_dir, started)
    run["params_name"] = params.name
    run.setdefault("stages", {})[stage] = {**entry, **extra}
    return write_json(Path(out_dir) / "run.json", run)


def remove_undeclared(out_dir: str | Path, stage_names: Iterable[str]) -> list[str]:
    """Delete the files of `out_dir` that none of `stage_names` declares in run.json (`results`): outputs of an
    earlier run that no stage writes any more. Study files are kept; nothing is removed while a stage has no
    `results` record (a run.json from before it existed). Returns the removed paths."""
    out_dir = Path(out_dir)
    stages = read_stages(out_dir)
    if any("results" not in stages.get(name, {}) for name in stage_names):
        return []
    declared = {f for name in stage_names for f in stages[name]["results"]}
    removed = [name for name in _stage_files(out_dir) if name not in declared]
    for name in removed:
        (out_dir / name).unlink()
    return removed


def read_run(out_dir: str | Path) -> dict:
    """run.json ({} before any stage ran)."""
    path = Path(out_dir) / "run.json"
    return json.loads(path.read_text()) if path.exists() else {}


def read_stages(out_dir: str | Path) -> dict:
    """run.json's stage entries ({} before any stage ran)."""
    return read_run(out_dir).get("stages", {})


def incomplete(out_dir: str | Path) -> dict | None:
    """run.json's mark of stages not finished by the study that began or was to run them (None when there are none):
    the latest study's commit and start, the stages it `finished` and those `pending` (stopped, failed, still running
    or not run yet: a pending stage's notebook is an earlier run's and its result files may be partly a later one's)."""
    return read_run(out_dir).get("incomplete")


def begin_study(out_dir: str | Path, executed: Iterable[str], reused: Iterable[str]) -> dict | None:
    """Mark the folder incomplete before a study executes `executed`; an earlier study's pending stages stay pending
    unless this one `reused` them (unchanged since they last finished). Returns the mark, None when none is left."""
    run = read_run(out_dir)
    earlier = (run.get("incomplete") or {}).get("pending", [])
    pending = sorted((set(earlier) - set(reused)) | set(executed))
    if pending:
        run["incomplete"] = {"git_commit": git_commit(),
                             "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                             "finished": [], "pending": pending}
    elif run.pop("incomplete", None) is None:
        return None
    write_json(Path(out_dir) / "run.json", run)
    return run.get("incomplete")


def end_stage(out_dir: str | Path, stage: str) -> dict | None:
    """Record that the study finished `stage`; the mark goes once no stage is pending. Returns the mark left."""
    run = read_run(out_dir)
    mark = run["incomplete"]
    mark["finished"].append(stage)
    mark["pending"].remove(stage)
    if not mark["pending"]:
        del run["incomplete"]
    write_json(Path(out_dir) / "run.json", run)
    return run.get("incomplete")
