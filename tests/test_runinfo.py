import json

import pytest

from eotd import params, runinfo


def test_run_json_keeps_one_entry_per_stage_with_input_hashes(tmp_path, monkeypatch):
    monkeypatch.setenv("EOTD_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("EOTD_DATA_DIR", str(runinfo.paths.ROOT.parent / "shared" / "data"))
    p = params.validate({"name": "unit", "seed": 3}, "test")
    data = tmp_path / "input.txt"
    data.write_text("42\n")
    runinfo.write_run_json(tmp_path, "01_a", p, inputs=[data])
    runinfo.write_run_json(tmp_path, "02_b", p, extra_field=1, folder=tmp_path / "students" / "PoTD")
    text = (tmp_path / "run.json").read_text()
    assert str(tmp_path) not in text and str(runinfo.paths.ROOT) not in text  # no machine paths
    run = json.loads(text)
    assert run["params_name"] == "unit" and set(run["stages"]) == {"01_a", "02_b"}
    first = run["stages"]["01_a"]
    assert first["seed"] == 3 and first["params"]["seed"] == 3 and first["data_dir"] == "../shared/data"
    assert first["inputs"] == {"$EOTD_CACHE_DIR/input.txt": runinfo.file_hash(data)}
    assert len(runinfo.file_hash(data)) == 64
    assert run["stages"]["02_b"]["folder"] == "$EOTD_CACHE_DIR/students/PoTD"
    assert first["versions"]["torch"] and first["versions"]["eotd"] == "0.1.0"
    assert run["stages"]["02_b"]["extra_field"] == 1


def test_results_of_a_run_do_not_mark_the_commit_dirty():
    commit = runinfo.git_commit()
    if commit is None:
        pytest.skip("not a git checkout")
    probe = runinfo.paths.ROOT / "results" / "unit-probe.txt"
    probe.write_text("x")
    try:
        assert runinfo.git_commit() == commit
    finally:
        probe.unlink()
