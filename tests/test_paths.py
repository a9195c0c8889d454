import os
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


def test_relative_names_a_linked_folder_beside_the_project_through_its_link(monkeypatch, tmp_path):
    """`../shared` a symbolic link (CI's layout on some machines): run.json must still say `../shared/data`, whether
    the path arrives through the link, resolved, or from EOTD_DATA_DIR pinned for the kernels."""
    for name in ("EOTD_CACHE_DIR", "EOTD_RESULTS_DIR", "EOTD_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    root, store = tmp_path / "work" / "main", tmp_path / "disk" / "shared"
    (store / "data" / "gsm8k").mkdir(parents=True)
    root.mkdir(parents=True)
    (tmp_path / "work" / "shared").symlink_to(store)
    (root / ".cache").symlink_to(tmp_path / "disk", target_is_directory=True)  # a link inside the project too
    monkeypatch.setattr(paths, "ROOT", root)
    linked = root.parent / "shared" / "data"
    for path in (linked, linked.resolve(), str(linked) + "/", root / "notebooks" / ".." / ".." / "shared" / "data"):
        assert paths.relative(path) == "../shared/data", path
    assert paths.relative(store / "data" / "gsm8k" / "test.jsonl") == "../shared/data/gsm8k/test.jsonl"
    assert paths.relative(root / ".cache" / "shared") == ".cache/shared"
    monkeypatch.chdir(root)
    monkeypatch.setenv("EOTD_DATA_DIR", "../shared/data")
    paths.pin_environment()  # what study.run does before starting kernels
    assert os.environ["EOTD_DATA_DIR"] == str(linked)
    assert paths.relative(os.environ["EOTD_DATA_DIR"]) == "../shared/data"
    assert paths.relative(paths.data_dir()) == "../shared/data"  # data_dir() resolves the link
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "real").mkdir(parents=True)
    (elsewhere / "via").symlink_to(elsewhere / "real")
    monkeypatch.setenv("EOTD_CACHE_DIR", str(elsewhere / "via"))
    for path in (elsewhere / "via" / "students", elsewhere / "real" / "students"):
        assert paths.relative(path) == "$EOTD_CACHE_DIR/students", path
