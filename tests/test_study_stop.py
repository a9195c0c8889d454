"""A study that stops before its last stage leaves its results folder marked incomplete (run.json and report.html),
never a silent mix of two runs; a rendered notebook replaces the earlier one only once its stage has finished."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest

from eotd import locks, params, paths, runinfo, study

STAGES = ("01_a", "02_b", "03_c")


def test_the_mark_lists_the_stages_no_study_finished(tmp_path):
    p = params.validate({"name": "unit", "seed": 3}, "test")
    assert runinfo.begin_study(tmp_path, executed=[], reused=["01_a"]) is None and not (tmp_path / "run.json").exists()
    runinfo.write_run_json(tmp_path, "01_a", p)
    mark = runinfo.begin_study(tmp_path, executed=["02_b", "03_c"], reused=["01_a"])
    assert mark["git_commit"] == runinfo.git_commit() and mark["finished"] == []
    runinfo.write_run_json(tmp_path, "02_b", p)  # a stage's own record keeps the mark
    assert runinfo.end_stage(tmp_path, "02_b") == {**mark, "finished": ["02_b"], "pending": ["03_c"]}
    # stopped before 03: a study of 01 alone leaves 03 pending, one that reuses 03 (unchanged) clears the mark
    assert runinfo.begin_study(tmp_path, executed=["01_a"], reused=[])["pending"] == ["01_a", "03_c"]
    assert runinfo.end_stage(tmp_path, "01_a")["pending"] == ["03_c"]
    assert runinfo.begin_study(tmp_path, executed=[], reused=["01_a", "02_b", "03_c"]) is None
    assert runinfo.incomplete(tmp_path) is None and set(runinfo.read_run(tmp_path)) == {"params_name", "stages"}
    runinfo.begin_study(tmp_path, executed=["03_c"], reused=[])
    assert runinfo.end_stage(tmp_path, "03_c") is None and runinfo.incomplete(tmp_path) is None


class Stop(Exception):
    """What the stand-in for papermill raises in the stage it stops."""


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """Stage notebooks 01_a, 02_b, 03_c of the smoke tier and a stand-in for papermill: each stage renders a notebook
    naming `fake.run`, writes <stage>.csv and records itself in run.json; the stage `fake.stop` stops after its csv."""
    monkeypatch.setenv("EOTD_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("EOTD_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for stage in STAGES:
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {stage}")]),
                       folder / f"{stage}.ipynb")
    monkeypatch.setattr(study, "notebooks", lambda: sorted(folder.glob("*.ipynb")))
    monkeypatch.setattr(study, "preflight", lambda p: None)
    fake = SimpleNamespace(run=1, stop=None, out=tmp_path / "results" / "smoke")
    p = params.load("params/smoke.yaml")

    def execute(notebook, output, **kwargs):
        nb = nbformat.read(notebook, as_version=4)
        nb.cells.append(nbformat.v4.new_markdown_cell(f"run {fake.run}"))
        nb.metadata["papermill"] = {"input_path": str(notebook), "output_path": str(output)}
        nbformat.write(nb, output)
        (fake.out / f"{notebook.stem}.csv").write_text(f"run {fake.run}\n")
        if notebook.stem == fake.stop:
            raise Stop
        runinfo.write_run_json(fake.out, notebook.stem, p, run=fake.run)

    monkeypatch.setattr(study.papermill, "execute_notebook", execute)
    return fake


def test_a_stopped_study_leaves_the_earlier_notebooks_and_marks_what_mixes(fake):
    out = fake.out
    study.run("params/smoke.yaml")
    first = {f.name: f.read_text() for f in out.iterdir() if f.is_file()}
    assert "Incomplete" not in first["report.html"] and "incomplete" not in json.loads(first["run.json"])
    rendered = json.loads(first["01_a.ipynb"])["metadata"]["papermill"]
    assert rendered["output_path"] == "$EOTD_RESULTS_DIR/smoke/01_a.ipynb"

    fake.run, fake.stop = 2, "02_b"
    with pytest.raises(Stop):
        study.run("params/smoke.yaml", force=True)
    mark = runinfo.incomplete(out)
    assert mark["finished"] == ["01_a"] and mark["pending"] == ["02_b", "03_c"]
    assert "run 2" in (out / "01_a.ipynb").read_text()
    for stage in ("02_b", "03_c"):  # the earlier run's notebooks, whole
        assert (out / f"{stage}.ipynb").read_text() == first[f"{stage}.ipynb"]
    assert (out / "02_b.csv").read_text() == "run 2\n"  # written before the stop: the mix the mark names
    assert [runinfo.read_stages(out)[s]["run"] for s in STAGES] == [2, 1, 1]
    report = (out / "report.html").read_text()
    assert "Incomplete:" in report and "not run): <code>02_b</code>, <code>03_c</code>." in report
    assert "<code>02_b</code>: not finished (see above), so no summary" in report
    assert "02_b" not in json.loads((out / "stages.json").read_text())  # never reused before it finishes
    partial = paths.cache_dir("rendering/smoke") / "02_b.ipynb"
    assert "run 2" in partial.read_text()

    fake.run, fake.stop = 3, None
    study.run("params/smoke.yaml")  # resumes: 02 runs again; 01 and 03 (never begun, unchanged) are reused
    assert [runinfo.read_stages(out)[s]["run"] for s in STAGES] == [2, 3, 1]
    assert runinfo.incomplete(out) is None and "Incomplete" not in (out / "report.html").read_text()
    assert not partial.exists()


def papermill_meta(notebook) -> dict:
    return json.loads(notebook.read_text())["metadata"]["papermill"]


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_smoke_study_stopped_by_sigterm_during_04_leaves_a_marked_folder(smoke_study, tmp_path):
    """A copy of the session's smoke study is re-run with --force and stopped by SIGTERM once 04 has rewritten its
    accuracy.csv; its kernel, left without its parent, ends itself within a second or so."""
    shutil.copytree(smoke_study[1] / "results", tmp_path / "results")
    shutil.copytree(smoke_study[1] / "cache", tmp_path / "cache", ignore=shutil.ignore_patterns("locks"))
    out = tmp_path / "results" / "smoke"
    earlier = {f.name: f.read_bytes() for f in out.glob("*.ipynb")}
    earlier_stages = runinfo.read_stages(out)
    accuracy_written = (out / "accuracy.csv").stat().st_mtime_ns
    partial = tmp_path / "cache" / "rendering" / "smoke" / "04_evaluation.ipynb"
    env = {**os.environ, "EOTD_RESULTS_DIR": str(tmp_path / "results"), "EOTD_CACHE_DIR": str(tmp_path / "cache")}
    env.pop(locks.HOLDER_ENV, None)
    log = tmp_path / "study.log"
    with open(log, "w") as handle:
        running = subprocess.Popen([sys.executable, "-m", "eotd.study", "params/smoke.yaml", "--force"], env=env,
                                   cwd=paths.ROOT, stdout=handle, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 600
        while not (partial.exists() and (out / "accuracy.csv").stat().st_mtime_ns > accuracy_written):
            assert running.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.05)
        kernels = [int(pid) for pid in Path(f"/proc/{running.pid}/task/{running.pid}/children").read_text().split()]
        running.send_signal(signal.SIGTERM)
        assert running.wait(timeout=60) != 0
        deadline = time.monotonic() + 60
        while any(map(alive, kernels)):
            assert time.monotonic() < deadline, "the stopped study's kernel still runs"
            time.sleep(0.1)
    finally:
        if running.poll() is None:
            running.kill()

    mark = runinfo.incomplete(out)
    assert mark["finished"] == ["01_data_synthesis", "02_verification", "03_fine_tuning"], log.read_text()[-3000:]
    assert mark["pending"] == ["04_evaluation", "05_ablations", "06_plots"] and partial.exists()
    stages = runinfo.read_stages(out)
    for notebook in sorted(out.glob("*.ipynb")):  # each whole, from the stopped run or the earlier one
        meta = papermill_meta(notebook)
        assert meta["end_time"] and meta["input_path"] == f"notebooks/{notebook.name}", notebook.name
        if notebook.stem in mark["finished"]:
            assert meta["start_time"] >= mark["started"] and stages[notebook.stem]["started"] >= mark["started"]
        else:
            assert notebook.read_bytes() == earlier[notebook.name], notebook.name
    assert stages["05_ablations"] == earlier_stages["05_ablations"]
    assert not set(mark["pending"]) & set(json.loads((out / "stages.json").read_text()))  # none will be reused
    report = (out / "report.html").read_text()
    assert "Incomplete:" in report and f"<code>{mark['git_commit'][:12]}</code>" in report
    assert "not run): <code>04_evaluation</code>, <code>05_ablations</code>, <code>06_plots</code>." in report
