"""Every path the project uses, resolved in one place (from this file and environment variables, never the cwd).

JupyterLab runs notebooks with cwd = notebooks/, papermill with the caller's cwd: both see the same paths.
Overrides: EOTD_DATA_DIR (local copy of the benchmark data, laid out like shared/data; unset = the HF hub),
EOTD_RESULTS_DIR and EOTD_CACHE_DIR.
"""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PARAMS = ROOT / "params"
NOTEBOOKS = ROOT / "notebooks"
ENV_FOLDERS = ("EOTD_DATA_DIR", "EOTD_CACHE_DIR", "EOTD_RESULTS_DIR")


def pin_environment() -> None:
    """Make relative EOTD_* folders absolute, against the cwd they were given in, before starting processes that run
    elsewhere: notebook kernels run in notebooks/, where `../shared/data` would name another folder."""
    for name in ENV_FOLDERS:
        if os.environ.get(name):  # absolute, links kept: run.json names `../shared/data`, not where a link points
            os.environ[name] = os.path.abspath(Path(os.environ[name]).expanduser())


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


def results_dir(name: str | None = None) -> Path:
    """results/ (or EOTD_RESULTS_DIR), or its sub-folder for one params file, created on demand."""
    base = _env_path("EOTD_RESULTS_DIR", ROOT / "results")
    path = base / name if name else base
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir(part: str | None = None) -> Path:
    """.cache/ (or EOTD_CACHE_DIR) for teacher responses, models and checkpoints; never in git."""
    base = _env_path("EOTD_CACHE_DIR", ROOT / ".cache")
    path = base / part if part else base
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path | None:
    """The local benchmark folder from EOTD_DATA_DIR, or None to load from the Hugging Face hub."""
    value = os.environ.get("EOTD_DATA_DIR")
    if not value:
        return None
    path = Path(value).expanduser().resolve()
    if not path.is_dir():
        raise FileNotFoundError(f"EOTD_DATA_DIR={value!r} is not a folder; point it at a copy laid out like shared/data")
    return path


def local_data_dir() -> Path:
    """Where a checkout looks for the benchmark copy: EOTD_DATA_DIR, else shared/data beside the repository (the
    layout CI gets); the folder may not exist."""
    value = os.environ.get("EOTD_DATA_DIR")
    return Path(value).expanduser().resolve() if value else ROOT.parent / "shared" / "data"


def project_path(path: str | Path) -> Path:
    """A path from a params file: absolute as given, relative ones against the project root (not the cwd)."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else ROOT / path


def _absolute(path: str | Path) -> Path:
    """`path` made absolute and its `..` collapsed, without following links (os.path.abspath)."""
    return Path(os.path.abspath(Path(path).expanduser()))


def _in_project(path: Path) -> str | None:
    """`path` named from the project root (`.cache/x`) or beside it (`../shared/data`), else None."""
    if path.is_relative_to(ROOT):
        return path.relative_to(ROOT).as_posix()
    if ROOT.parent != ROOT.parent.parent and path.is_relative_to(ROOT.parent):  # a sibling folder: ../shared/data
        return "../" + path.relative_to(ROOT.parent).as_posix()
    return None


def _links() -> list[tuple[Path, Path]]:
    """(link, where it points) for every symbolic link at the top of the project and beside it (`../shared`), so a
    path that arrives already resolved is named through the link as it would be had it not been resolved."""
    found = []
    for folder in (ROOT, ROOT.parent):
        try:
            entries = [Path(e.path) for e in os.scandir(folder) if e.is_symlink()]
        except OSError:
            continue
        found += [(link, link.resolve()) for link in sorted(entries)]
    return sorted(found, key=lambda pair: -len(pair[1].parts))  # the nearest link first when two lead to a path


def relative(path: str | Path) -> str:
    """How result files and rendered notebooks name a path, never as this machine's absolute path: relative to the
    project root (`.cache/students/...`, `../shared/data` beside it), or under the variable that placed it
    (`$EOTD_CACHE_DIR/...`) when an override points elsewhere; anything else by its name alone. The name is the same
    whether or not a folder on the way is a symbolic link (`../shared` a link), and whether `path` was resolved."""
    given = _absolute(path)
    real = given.resolve()
    for candidate in (given, real):
        if (name := _in_project(candidate)) is not None:
            return name
    for link, target in _links():
        if real.is_relative_to(target) and (name := _in_project(link)) is not None:
            return "/".join([name, *real.relative_to(target).parts])
    for name in ENV_FOLDERS:
        value = os.environ.get(name)
        if not value:
            continue
        base = _absolute(value)
        for candidate, root in ((given, base), (real, base.resolve())):
            if candidate.is_relative_to(root):
                return "/".join([_in_project(base) or "$" + name, *candidate.relative_to(root).parts])
    return real.name
