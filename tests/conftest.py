import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The benchmark data folder: EOTD_DATA_DIR, else shared/data next to the repo; skip when neither exists."""
    value = os.environ.get("EOTD_DATA_DIR")
    path = Path(value).expanduser() if value else Path(__file__).resolve().parents[2] / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"benchmark data not found at {path}: set EOTD_DATA_DIR to a copy laid out like shared/data")
    return path
