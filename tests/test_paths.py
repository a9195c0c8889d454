from pathlib import Path

from eotd import paths


def test_relative_never_writes_a_machine_path(monkeypatch, tmp_path):
    for name in ("EOTD_CACHE_DIR", "EOTD_RESULTS_DIR", "EOTD_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    assert paths.relative(paths.ROOT / ".cache" / "students" / "PoTD") == ".cache/students/PoTD"
    assert paths.relative(paths.ROOT) == "."
    assert paths.relative(paths.ROOT.parent / "shared" / "data") == "../shared/data"
    monkeypatch.setenv("EOTD_CACHE_DIR", str(tmp_path / "cache"))
    assert paths.relative(tmp_path / "cache" / "students" / "x") == "$EOTD_CACHE_DIR/students/x"
    assert paths.relative(str(tmp_path / "cache")) == "$EOTD_CACHE_DIR"
    assert paths.relative(Path("/nowhere/known/file.txt")) == "file.txt"


def test_relative_resolves_links_and_dots(tmp_path):
    assert paths.relative(paths.ROOT / "src" / ".." / "params" / "default.yaml") == "params/default.yaml"
