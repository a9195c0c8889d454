import json
import os
from datetime import datetime, timezone

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


def test_a_timed_stage_records_its_machine_time_and_the_files_it_wrote(tmp_path, monkeypatch):
    monkeypatch.setenv("EOTD_CACHE_DIR", str(tmp_path))
    p = params.validate({"name": "unit", "seed": 3}, "test")
    (tmp_path / "old.csv").write_text("from an earlier stage\n")
    os.utime(tmp_path / "old.csv", (0, 0))
    started = datetime.now(timezone.utc)
    (tmp_path / "figs").mkdir()
    for name in ("accuracy.csv", "figs/fig_a.png", "04_evaluation.ipynb", "report.html"):
        (tmp_path / name).write_text("new")
    runinfo.write_run_json(tmp_path, "04_evaluation", p, started=started)
    stage = json.loads((tmp_path / "run.json").read_text())["stages"]["04_evaluation"]
    assert stage["results"] == ["accuracy.csv", "figs/fig_a.png"]  # not old.csv, not the study's own files
    assert stage["seconds"] >= 0 and stage["started"] <= stage["finished"]
    assert set(stage["machine"]) == {"cpu", "cores", "bf16", "gpu"} and stage["machine"]["cores"] >= 1
    assert isinstance(stage["peak_rss_mb"], int) and stage["peak_rss_mb"] > 0  # this process's peak so far


def test_the_study_removes_files_no_stage_of_its_run_declares(tmp_path):
    p = params.validate({"name": "unit", "seed": 3}, "test")
    for name in ("accuracy.csv", "fig_stale.png", "01_a.ipynb", "stages.json", "html/01_a.html"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("x")
    runinfo.write_run_json(tmp_path, "01_a", p)  # an entry without `results`: nothing can be judged stale
    assert runinfo.remove_undeclared(tmp_path, ["01_a"]) == [] and (tmp_path / "fig_stale.png").exists()
    runinfo.write_run_json(tmp_path, "01_a", p, results=["accuracy.csv"])
    assert runinfo.remove_undeclared(tmp_path, ["01_a"]) == ["fig_stale.png"]
    assert sorted(str(f.relative_to(tmp_path)) for f in tmp_path.rglob("*") if f.is_file()) == [
        "01_a.ipynb", "accuracy.csv", "html/01_a.html", "run.json", "stages.json"]
