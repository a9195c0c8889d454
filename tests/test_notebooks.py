"""Every numbered notebook runs through papermill on the smoke tier (real kernel, real outputs)."""
import json

import pandas as pd

import pytest

from eotd import study


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("EOTD_RESULTS_DIR", str(tmp_path))
    return tmp_path / "smoke"


def test_verification_notebook_on_a_rationales_file(results, tmp_path):
    tier = tmp_path / "smoke.yaml"
    tier.write_text("name: smoke\nrationales_file: tests/fixtures/rationales.jsonl\n")
    study.run(tier, stages=["02"])
    assert (results / "02_verification.ipynb").exists()
    summary = json.loads((results / "verification_summary.json").read_text())
    assert set(summary) == {"cot", "pot", "eot"}
    assert summary["pot"]["reasons"]["forbidden"] == 1
    assert summary["pot"]["reasons"]["timeout"] == 1
    assert summary["eot"]["reasons"]["underdetermined"] == 1
    verified = [json.loads(line) for line in (results / "verified.jsonl").read_text().splitlines()]
    assert verified and all(row["correct"] for row in verified)
    assert sum(entry["verified"] for entry in summary.values()) == len(verified)
    run = json.loads((results / "run.json").read_text())
    assert run["stages"]["02_verification"]["params"]["name"] == "smoke"


def test_every_notebook_has_one_parameters_cell_matching_params():
    from typing import get_type_hints

    from eotd.params import Params

    for path in study.notebooks():
        nb = json.loads(path.read_text())
        tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, path
        names = {line.split("=")[0].strip() for line in "".join(tagged[0]["source"]).splitlines()
                 if "=" in line and not line.startswith("#")}
        assert names <= set(get_type_hints(Params)), (path, names - set(get_type_hints(Params)))
        assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code"), f"{path} has outputs"


def test_whole_smoke_study(results, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EOTD_CACHE_DIR", str(tmp_path / "cache"))
    study.run("params/smoke.yaml")
    for notebook in study.notebooks():
        assert (results / notebook.name).exists(), notebook.name

    summary = json.loads((results / "synthesis_summary.json").read_text())
    assert summary["teacher"] == "annotation:gold-annotations-v2" and summary["teacher_is_llm"] is False
    for thought in ("cot", "pot", "eot"):
        entry = summary["types"][thought]
        assert {"generated", "verified", "kept", "reasons"} <= set(entry) and entry["kept"] > 0
    assert {"tokens", "cost"} <= set(summary)
    verification = json.loads((results / "verification_summary.json").read_text())
    # 02 re-verifies every generated rationale and agrees with 01
    assert {t: v["verified"] for t, v in verification.items()} == {t: s["verified"] for t, s in summary["types"].items()}

    accuracy = pd.read_csv(results / "accuracy.csv")
    assert list(accuracy.columns) == ["dataset", "method", "strategy", "n", "correct", "accuracy", "ci_low", "ci_high"]
    assert set(accuracy.method) == {"base", "CoTD", "PoTD", "EoTD", "ETD"}
    assert {"fallback:pot>eot>cot", "vote"} <= set(accuracy[accuracy.method == "ETD"].strategy)
    assert accuracy.accuracy.between(0, 1).all() and (accuracy.ci_low <= accuracy.accuracy).all()
    losses = pd.read_csv(results / "training_losses.csv")
    assert set(losses.method) == {"CoTD", "PoTD", "EoTD", "ETD"}
    ablation = pd.read_csv(results / "ablation_accuracy.csv")
    assert set(ablation.ablation) == {"thought_mix", "data_size", "rationale_style"} and ablation.variant.nunique() == 11
    assert {"fig_accuracy_by_method.png", "fig_thought_mix.png", "fig_training_loss.png", "fig_rationale_style.png"} <= {p.name for p in results.iterdir()}
    run = json.loads((results / "run.json").read_text())
    assert {nb.stem for nb in study.notebooks()} == set(run["stages"])

    capsys.readouterr()
    study.run("params/smoke.yaml")  # nothing changed: every stage is reused
    assert capsys.readouterr().out.count("unchanged, reusing") == len(study.notebooks())


def test_stage_keys_chain_through_unselected_stages(tmp_path, monkeypatch):
    """A partial run stores the keys a full run computes, and changing 02 re-runs everything after it."""
    import shutil

    from eotd import paths

    monkeypatch.setenv("EOTD_RESULTS_DIR", str(tmp_path / "results"))
    folder = tmp_path / "notebooks"
    shutil.copytree(paths.NOTEBOOKS, folder)
    monkeypatch.setattr(study, "notebooks", lambda: sorted(folder.glob("[0-9][0-9]_*.ipynb")))
    executed = []

    def fake_execute(notebook, target, **kwargs):
        executed.append(notebook.name[:2])
        target.write_text("{}")

    monkeypatch.setattr(study.papermill, "execute_notebook", fake_execute)
    monkeypatch.setattr(study, "preflight", lambda p: None)
    tier = tmp_path / "keys.yaml"
    tier.write_text("student: tiny-llama\n")
    study.run(tier, stages=["03", "04"])
    assert executed == ["03", "04"]
    study.run(tier)
    assert executed[2:] == ["01", "02", "05", "06"]  # 03 and 04 are reused: their keys are the full run's
    nb = folder / "02_verification.ipynb"
    nb.write_text(nb.read_text().replace("# 02", "# 02 (edited)", 1))
    study.run(tier)
    assert executed[6:] == ["02", "03", "04", "05", "06"]
