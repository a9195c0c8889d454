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
