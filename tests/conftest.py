import os
from pathlib import Path

import pytest

from eotd import paths

# Offline, the benchmark sets come from the local copy (shared/data beside the repository) when there is one, so
# `make test` needs no EOTD_DATA_DIR here; CI sets it explicitly.
if not os.environ.get("EOTD_DATA_DIR") and paths.local_data_dir().is_dir():
    os.environ["EOTD_DATA_DIR"] = str(paths.local_data_dir())


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The benchmark data folder: EOTD_DATA_DIR, else shared/data next to the repo; skip when neither exists."""
    path = paths.local_data_dir()
    if not path.is_dir():
        pytest.skip(f"benchmark data not found at {path}: set EOTD_DATA_DIR to a copy laid out like shared/data")
    return path


@pytest.fixture(scope="session")
def smoke_study(tmp_path_factory) -> tuple[Path, Path]:
    """The whole smoke study, run once per session (the stages' tests and the JupyterLab test read it):
    (the tier's results folder, the root holding results/ and cache/)."""
    from eotd import study

    root = tmp_path_factory.mktemp("smoke-study")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EOTD_RESULTS_DIR", str(root / "results"))
        patch.setenv("EOTD_CACHE_DIR", str(root / "cache"))
        patch.delenv("EOTD_PROGRESS", raising=False)
        study.run("params/smoke.yaml")
    return root / "results" / "smoke", root
