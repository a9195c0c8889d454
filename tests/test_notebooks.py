"""Every numbered notebook runs through papermill on the smoke tier (real kernel, real outputs), and the rendered
notebooks read as a report."""
import ast
import json
import os
import re

import pandas as pd
import pytest
from browser import check_report

from eotd import params, paths, protocol, study


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("EOTD_RESULTS_DIR", str(tmp_path))
    monkeypatch.setenv("EOTD_CACHE_DIR", str(tmp_path / "cache"))  # 02 writes training splits: never the real cache's
    return tmp_path / "smoke"


def _cells(notebook):
    return [c for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"]


def test_verification_notebook_on_a_rationales_file(results, tmp_path):
    tier = tmp_path / "smoke.yaml"
    tier.write_text("name: smoke\nrationales_file: tests/fixtures/rationales.jsonl\n")
    study.run(tier, stages=["02"])
    rendered = json.loads((results / "02_verification.ipynb").read_text())
    assert rendered["metadata"]["papermill"]["parameters"] == {"name": "$EOTD_RESULTS_DIR/smoke.yaml"}
    summary = json.loads((results / "verification_summary.json").read_text())
    assert set(summary) == {"cot", "pot", "eot", "eot_forms"}
    assert summary["pot"]["reasons"]["forbidden"] == 1
    assert summary["pot"]["reasons"]["timeout"] == 1
    assert summary["eot"]["reasons"]["underdetermined"] == 1
    verified = [json.loads(line) for line in (results / "verified.jsonl").read_text().splitlines()]
    assert verified and all(row["correct"] for row in verified)
    assert sum(summary[t]["verified"] for t in ("cot", "pot", "eot")) == len(verified)
    run = json.loads((results / "run.json").read_text())
    assert run["stages"]["02_verification"]["params"]["rationales_file"] == "tests/fixtures/rationales.jsonl"
    assert list(run["stages"]["02_verification"]["inputs"]) == ["tests/fixtures/rationales.jsonl"]


def test_every_parameters_cell_names_a_params_file_and_assigns_its_values():
    for path in study.notebooks():
        tagged = [c for c in json.loads(path.read_text())["cells"]
                  if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, path
        assigned = {node.targets[0].id: ast.literal_eval(node.value)
                    for node in ast.parse("".join(tagged[0]["source"])).body if isinstance(node, ast.Assign)}
        assert set(assigned) == {"name", "overrides"} and assigned["overrides"] == {}, (path, assigned)
        named = params.load(paths.PARAMS / f"{assigned['name']}.yaml").to_dict()
        assert all(named[k] == v for k, v in assigned.items() if k in named), path
        assert all(not c.get("outputs") for c in _cells(path)), f"{path} has outputs"


def test_smoke_study_renders_every_stage(smoke_study):
    results, _ = smoke_study
    for notebook in study.notebooks():
        assert (results / notebook.name).exists(), notebook.name


def test_synthesis_stage_counts_each_type_and_source(smoke_study):
    summary = json.loads((smoke_study[0] / "synthesis_summary.json").read_text())
    assert summary["teacher"] == "annotation:gold-annotations-v3" and summary["teacher_is_llm"] is False
    for thought in ("cot", "pot", "eot"):
        entry = summary["types"][thought]
        assert {"generated", "verified", "kept", "reasons"} <= set(entry) and entry["kept"] > 0
    assert {"tokens", "cost"} <= set(summary)
    assert set(summary["sources"]) == {"gsm8k_train", "svamp", "multiarith", "asdiv"}  # train_extra's folds too
    assert sum(summary["sources"].values()) == summary["questions"]


def test_verification_stage_agrees_with_synthesis(smoke_study):
    results, _ = smoke_study
    summary = json.loads((results / "synthesis_summary.json").read_text())
    verification = json.loads((results / "verification_summary.json").read_text())
    forms, forward = verification.pop("eot_forms"), verification.pop("eot_forward")
    assert {t: v["verified"] for t, v in verification.items()} == {
        t: s["verified"] for t, s in summary["types"].items()}
    assert forms["all"]["verified"] == verification["eot"]["verified"] == forms["all"]["inverts"] + \
        forms["all"]["text_forward"] + forms["all"]["forward_fallback"]
    assert set(forms) == {*summary["sources"], "all"} and forms["all"]["inverts"] == verification["eot"]["inverts"] > 0
    assert forward["verified"] > 0  # EoTD-forward's data: the forward EoT of the same questions
    rows = [json.loads(line) for line in (results / "verified.jsonl").read_text().splitlines()]
    eot = [r for r in rows if r["thought"] == "eot" and not r["variant"]]
    assert {r["eot_form"] for r in eot} <= {"inverts", "text_forward", "forward_fallback"}
    assert all(r["eot_form"] == "forward_fallback" or r["schema"] != "forward" for r in eot)


def test_training_stage_trains_every_seed(smoke_study):
    losses = pd.read_csv(smoke_study[0] / "training_losses.csv")
    assert set(losses.method) == {"CoTD@0", "PoTD@0", "PoTD@1", "EoTD@0", "EoTD@1", "ETD@0", "EoTD-forward@0",
                                  "EoTD-forward@1"}


def test_evaluation_stage_answers_every_problem_per_seed(smoke_study):
    results, _ = smoke_study
    p = params.load("params/smoke.yaml")
    accuracy = pd.read_csv(results / "accuracy.csv")
    assert list(accuracy.columns) == protocol.ACCURACY_COLUMNS
    assert set(accuracy.method) == {"base", "CoTD", "PoTD", "EoTD", "ETD", "EoTD-forward"}
    predictions = pd.read_parquet(results / "predictions.parquet")
    assert set(predictions.form) <= {"inverse", "forward", "unknown"}
    comparisons = pd.read_csv(results / "method_comparisons.csv")
    assert "all" in set(comparisons.form) and set(comparisons.form) <= {"all", "inverse", "forward"}
    assert set(comparisons[comparisons.form != "all"].dataset) <= {"svamp", "asdiv", "multiarith"}
    assert {"fallback:pot>eot>cot", "vote"} <= set(accuracy[accuracy.method == "ETD"].strategy)
    # every method answered every problem of every set: n is the set's size from the params file
    sizes = accuracy[~accuracy.dataset.str.endswith("_overlap")].groupby("dataset")["n"].unique()
    assert {d: list(n) for d, n in sizes.items()} == {d: [p.eval_limits.get(d, p.eval_limit)] for d in p.eval_sets}
    assert accuracy.accuracy.to_numpy() == pytest.approx((accuracy.correct / accuracy.n).to_numpy())
    assert ((accuracy.ci_low <= accuracy.accuracy) & (accuracy.accuracy <= accuracy.ci_high)).all()
    by_seed = pd.read_csv(results / "accuracy_by_seed.csv")
    assert list(by_seed.columns) == protocol.SEED_COLUMNS
    assert by_seed.groupby("method")["seed"].unique().map(sorted).to_dict() == {
        "CoTD": [0], "PoTD": [0, 1], "EoTD": [0, 1], "ETD": [0], "EoTD-forward": [0, 1]}  # train_seeds
    for (dataset, method, strategy), group in by_seed.groupby(["dataset", "method", "strategy"]):
        row = accuracy[(accuracy.dataset == dataset) & (accuracy.method == method) & (accuracy.strategy == strategy)]
        assert row.correct.item() == pytest.approx(group.correct.mean())  # the headline row is the exact seed mean
    predictions = pd.read_parquet(results / "predictions.parquet")
    single = by_seed[by_seed.strategy.isin(protocol.THOUGHTS)]
    base = accuracy[(accuracy.method == "base") & accuracy.strategy.isin(protocol.THOUGHTS)]
    assert len(predictions) == single.n.sum() + base.n.sum()  # every seed of every student answered every problem


def test_evaluation_stage_compares_methods_over_seeds(smoke_study):
    results, _ = smoke_study
    comparisons = pd.read_csv(results / "method_comparisons.csv")
    assert set(comparisons.a) | set(comparisons.b) == {"base", "CoTD", "PoTD", "EoTD", "ETD", "EoTD-forward"}
    assert ((comparisons.diff_low <= comparisons["diff"]) & (comparisons["diff"] <= comparisons.diff_high)).all()
    assert (comparisons.p_holm >= comparisons.p_value).all()
    one_seed = comparisons[(comparisons.a_seeds == 1) & (comparisons.a != "base")
                           | (comparisons.b_seeds == 1) & (comparisons.b != "base")]
    assert not one_seed.verdict.str.contains(" beats ").any()  # CoTD and ETD have one seed in the smoke tier
    design = pd.read_csv(results / "design.csv")
    assert len(design) and (design.detectable >= design.half_width).all()  # smoke students may all score 0


def test_ablation_and_plot_stages(smoke_study):
    results, _ = smoke_study
    ablation = pd.read_csv(results / "ablation_accuracy.csv")
    assert set(ablation.ablation) == {"data_size", "rationale_style"}
    assert ablation.variant.nunique() == 4
    assert {"fig_accuracy_by_method.png", "fig_data_size.png", "fig_training_loss.png", "fig_rationale_style.png",
            "report.html"} <= {p.name for p in results.iterdir()}


def test_run_record_times_each_stage_and_declares_every_file(smoke_study):
    results, _ = smoke_study
    run = json.loads((results / "run.json").read_text())
    assert {nb.stem for nb in study.notebooks()} == set(run["stages"])
    for name, stage in run["stages"].items():
        assert stage["seconds"] > 0 and set(stage["machine"]) == {"cpu", "cores", "bf16", "gpu"}, name
    declared = {f for stage in run["stages"].values() for f in stage["results"]}
    assert {"accuracy.csv", "design.csv", "fig_method_differences.png", "synthesis_summary.json"} <= declared
    written = {str(f.relative_to(results)) for f in results.rglob("*") if f.is_file()}
    assert written - declared == {"run.json", "stages.json", "report.html"} | {
        str(f.relative_to(results)) for f in results.glob("html/*")} | {nb.name for nb in study.notebooks()}


def check_rendered(folder):
    """The rendered notebooks of a run read as a report: no errors or warnings, a progress line per student and a
    handful of others, relative paths, and a generated summary as the last output."""
    for notebook in study.notebooks():
        rendered = json.loads((folder / notebook.name).read_text())
        outputs = [o for c in rendered["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
        assert not [o for o in outputs if o["output_type"] == "error"], notebook.name
        stderr = "".join("".join(o["text"]) for o in outputs if o.get("name") == "stderr")
        assert stderr == "", (notebook.name, stderr[:500])  # no warnings, no bars
        lines = "".join("".join(o["text"]) for o in outputs if o.get("name") == "stdout").splitlines()
        assert all("\r" not in line for line in lines), (notebook.name, lines)  # one line per finished loop
        other = [line for line in lines if not re.match(r"(train|generate) \S+", line)]  # one per student
        assert len(other) <= 16, (notebook.name, other)
        assert rendered["metadata"]["papermill"]["input_path"] == f"notebooks/{notebook.name}"
        last = outputs[-1]["data"]["text/markdown"]
        assert "".join(last).startswith(f"**{notebook.name[:2]} · "), (notebook.name, last)


def check_no_machine_paths(folder, *extra):
    machine = re.compile("|".join(re.escape(str(p)) for p in (paths.ROOT, *extra)) + r"|/tmp/|/home/|/root/|/work/")
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix != ".png"):
        text = pd.read_parquet(path).to_csv() if path.suffix == ".parquet" else \
            path.read_bytes().decode("utf-8", errors="replace")
        hit = machine.search(text)
        assert hit is None, (path, text[max(0, hit.start() - 80):hit.end() + 80])


def test_rendered_notebooks_read_as_a_report(smoke_study):
    check_rendered(smoke_study[0])


def test_no_machine_path_in_any_result_file(smoke_study):
    check_no_machine_paths(*smoke_study)


@pytest.mark.parametrize("tier", ["default", "smoke"])
def test_committed_results_read_as_a_report(tier):
    folder = paths.ROOT / "results" / tier
    if not (folder / "report.html").exists():
        pytest.skip(f"results/{tier} is written by `make study PARAMS=params/{tier}.yaml`")
    check_rendered(folder)
    check_no_machine_paths(folder)


def test_smoke_report_displays_in_a_browser(smoke_study):
    results, _ = smoke_study
    check_report(results / "report.html", "report-smoke.png")


def test_stage_keys_chain_through_unselected_stages(tmp_path, monkeypatch):
    """A partial run stores the keys a full run computes, and changing 02 re-runs everything after it."""
    import shutil

    monkeypatch.setenv("EOTD_RESULTS_DIR", str(tmp_path / "results"))
    folder = tmp_path / "notebooks"
    shutil.copytree(paths.NOTEBOOKS, folder)
    monkeypatch.setattr(study, "notebooks", lambda: sorted(folder.glob("[0-9][0-9]_*.ipynb")))
    executed = []

    def fake_execute(notebook, target, **kwargs):
        executed.append(notebook.name[:2])
        target.write_text("{}")

    monkeypatch.setattr(study.papermill, "execute_notebook", fake_execute)
    monkeypatch.setattr(study, "_relative_metadata", lambda rendered: None)
    monkeypatch.setattr(study.html_report, "build", lambda out: out / "report.html")
    monkeypatch.setattr(study, "preflight", lambda p: None)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EOTD_DATA_DIR", "data")  # relative to the caller's folder, not to the kernels' notebooks/
    tier = tmp_path / "keys.yaml"
    tier.write_text("student: tiny-llama\n")
    study.run(tier, stages=["03", "04"])
    assert executed == ["03", "04"]
    assert os.environ["EOTD_DATA_DIR"] == str(tmp_path / "data")
    study.run(tier)
    assert executed[2:] == ["01", "02", "05", "06"]  # 03 and 04 are reused: their keys are the full run's
    nb = folder / "02_verification.ipynb"
    nb.write_text(nb.read_text().replace("# 02", "# 02 (edited)", 1))
    study.run(tier)
    assert executed[6:] == ["02", "03", "04", "05", "06"]


def test_the_runner_passes_the_run_name_or_the_file():
    tier = params.load("params/smoke.yaml")
    assert study.notebook_parameters("params/smoke.yaml", tier) == {"name": "smoke"}
    assert study.notebook_parameters(paths.PARAMS / "smoke.yaml", tier) == {"name": "smoke"}
    other = paths.ROOT / "tests" / "fixtures" / "smoke.yaml"
    assert study.notebook_parameters(other, tier) == {"name": str(other)}


def test_rerun_reuses_every_stage_and_removes_stale_files(smoke_study, capsys):
    """Last in this file: it re-runs the shared smoke study (every stage reused) after planting a stale figure."""
    results, root = smoke_study
    (results / "fig_stale.png").write_bytes(b"from an earlier run")  # a figure no stage writes any more
    capsys.readouterr()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EOTD_RESULTS_DIR", str(root / "results"))
        patch.setenv("EOTD_CACHE_DIR", str(root / "cache"))
        study.run("params/smoke.yaml")  # nothing changed: every stage is reused
    printed = capsys.readouterr().out
    assert printed.count("unchanged, reusing") == len(study.notebooks())
    assert "removed fig_stale.png" in printed and not (results / "fig_stale.png").exists()
