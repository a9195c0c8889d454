from pathlib import Path

import pytest

from eotd import paths


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The benchmark data folder: EOTD_DATA_DIR, else shared/data next to the repo; skip when neither exists."""
    path = paths.local_data_dir()
    if not path.is_dir():
        pytest.skip(f"benchmark data not found at {path}: set EOTD_DATA_DIR to a copy laid out like shared/data")
    return path
