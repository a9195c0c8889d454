import json
import subprocess

import pandas as pd
import pytest
from test_report import _write_tier

from eotd import paths, readme

README = """# project

Intro text that must stay.

<!-- results:start -->
old hand-typed table 99.9%
<!-- results:end -->

## Layout
Trailing text that must stay.
"""


def test_readme_blocks_are_generated_from_the_committed_results():
    """README's tiers, timings, findings and results blocks are what `python -m eotd.readme` writes from params/*.yaml
    and the committed results/*/: after changing either, run it."""
    for (start, end), block in readme.blocks(paths.ROOT / "results").items():
        assert readme.current(paths.ROOT / "README.md", start, end) == block, \
            f"README.md's {start} block is stale: run `python -m eotd.readme`"


@pytest.mark.parametrize("params, rewrites", [([], True), (["PARAMS=params/default.yaml"], True),
                                              (["PARAMS=params/smoke.yaml"], False)])
def test_only_the_default_tier_rewrites_readme(params, rewrites):
    plan = subprocess.run(["make", "-n", "study", *params], cwd=paths.ROOT, capture_output=True, text=True,
                          check=True, timeout=60).stdout
    assert "-m eotd.study" in plan and ("-m eotd.readme" in plan) == rewrites
    assert "-m eotd.readme" in subprocess.run(["make", "-n", "readme"], cwd=paths.ROOT, capture_output=True,
                                              text=True, check=True, timeout=60).stdout


def _comparison(dataset, a, b, diff, low, high, verdict="no clear difference", form="all", seeds=(3, 3)):
    strategy = {"base": "cot", "PoTD": "pot", "EoTD": "eot", "EoTD-forward": "eot", "CoTD": "cot"}
    return {"dataset": dataset, "form": form, "a": a, "b": b, "a_strategy": strategy[a], "b_strategy": strategy[b],
            "a_seeds": 1 if a == "base" else seeds[0], "b_seeds": 1 if b == "base" else seeds[1],
            "diff": diff, "diff_low": low, "diff_high": high, "p_holm": 0.01 if verdict.endswith("base") else 0.5,
            "verdict": verdict}


def _write_findings_tier(root, forms=True):
    """A run of PoTD, EoTD and EoTD-forward (3 seeds each) and base on svamp and asdiv, trained on a GPU."""
    tier = root / "default"
    tier.mkdir(parents=True)
    rows = [_comparison("svamp", "base", "PoTD", -0.104, -0.16, -0.048, "PoTD beats base"),
            _comparison("svamp", "PoTD", "EoTD", 0.027, -0.039, 0.093),
            _comparison("svamp", "PoTD", "EoTD-forward", 0.01, -0.05, 0.07),
            _comparison("svamp", "EoTD", "EoTD-forward", -0.017, -0.08, 0.046),
            _comparison("asdiv", "PoTD", "EoTD", -0.04, -0.123, 0.043),
            _comparison("asdiv", "EoTD", "EoTD-forward", 0.02, -0.03, 0.07),
            _comparison("asdiv_overlap", "PoTD", "EoTD", 0.5, 0.1, 0.9, "PoTD beats EoTD")]
    if forms:
        rows += [_comparison("svamp", "EoTD", "EoTD-forward", 0.15, 0.05, 0.25, "EoTD beats EoTD-forward", "inverse"),
                 _comparison("svamp", "PoTD", "EoTD", 0.05, -0.1, 0.2, form="inverse")]
    comparisons = pd.DataFrame(rows)
    (comparisons if forms else comparisons.drop(columns="form")).to_csv(tier / "method_comparisons.csv", index=False)
    accuracy = {("svamp", "PoTD"): (0.10, 0.12, 0.14), ("svamp", "EoTD"): (0.05, 0.15, 0.25),
                ("svamp", "EoTD-forward"): (0.10, 0.11, 0.12), ("asdiv", "PoTD"): (0.10, 0.20, 0.30),
                ("asdiv", "EoTD"): (0.20, 0.30, 0.40), ("asdiv", "EoTD-forward"): (0.1, 0.1, 0.1)}
    strategy = {"PoTD": "pot", "EoTD": "eot", "EoTD-forward": "eot"}
    pd.DataFrame([{"dataset": d, "method": m, "strategy": strategy[m], "seed": seed, "n": 200,
                   "correct": round(200 * x), "accuracy": x}
                  for (d, m), xs in accuracy.items() for seed, x in enumerate(xs)]
                 + [{"dataset": "svamp", "method": "PoTD", "strategy": "cot", "seed": 0, "n": 200, "correct": 190,
                     "accuracy": 0.95}]).to_csv(tier / "accuracy_by_seed.csv", index=False)
    cpu = {"cpu": "AMD EPYC", "cores": 16, "bf16": True, "gpu": None}
    stages = {"01_data_synthesis": {"started": "2026-12-05T23:50:00+00:00", "git_commit": "0123456789abc",
                                    "machine": cpu},
              "03_fine_tuning": {"started": "2026-12-06T00:10:00+00:00", "finished": "2026-12-06T01:00:00+00:00",
                                 "git_commit": "0123456789abc", "machine": {**cpu, "gpu": "NVIDIA H100 80GB HBM3"},
                                 "students": {"PoTD@0": "a", "PoTD@1": "b", "EoTD@0": "c"},
                                 "students_reused": ["PoTD@1"]}}
    (tier / "run.json").write_text(json.dumps({"params_name": "default", "stages": stages}))
    summary = {"eot": {"total": 10, "verified": 10}}
    if forms:
        summary["eot_forms"] = {"gsm8k_train": {"inverts": 1, "text_forward": 1, "forward_fallback": 2, "verified": 4},
                                "svamp": {"inverts": 3, "text_forward": 2, "forward_fallback": 1, "verified": 6},
                                "all": {"inverts": 4, "text_forward": 3, "forward_fallback": 3, "verified": 10}}
    (tier / "verification_summary.json").write_text(json.dumps(summary))
    return tier


def test_findings_state_the_run_its_verdicts_and_what_eot_found(tmp_path):
    text = readme.findings_markdown(_write_findings_tier(tmp_path))
    bullets = {line.split("**")[1]: line for line in text.splitlines() if line.startswith("- **")}
    assert list(bullets) == ["Run.", "Design.", "Decided", "Largest undecided differences", "Seed spread",
                             "EoT training data.", "EoTD vs EoTD-forward", "EoTD vs PoTD"]
    assert bullets["Run."] == ("- **Run.** Commit 0123456, 2026-12-05 to 2026-12-06, on AMD EPYC, 16 cores, bf16; "
                               "AMD EPYC, 16 cores, bf16, GPU NVIDIA H100 80GB HBM3; it trained 2 of its 3 students "
                               "and found the others in the cache, trained by an earlier run.")
    assert "PoTD, EoTD and EoTD-forward trained with 3 seeds each, and the untrained base" in bullets["Design."]
    assert "problems per set: `svamp` 200, `asdiv` 200" in bullets["Design."]
    # decided: each verdict with its difference, the winner's side first; the _overlap set is left out
    assert bullets["Decided"] == ("- **Decided** (2 of 8 pairs): `svamp`: PoTD beats base (+10.4 [+4.8, +16.0]); "
                                  "`svamp` (inverse problems): EoTD beats EoTD-forward (+15.0 [+5.0, +25.0]).")
    # the largest undecided difference between trained methods per set, over all problems, never called best
    assert bullets["Largest undecided differences"].endswith(
        ": `svamp`: PoTD − EoTD +2.7 [-3.9, +9.3]; `asdiv`: EoTD − PoTD +4.0 [-4.3, +12.3].")
    assert "best" not in text
    # SD over seeds at each method's headline strategy: svamp's largest is EoTD's alone; asdiv's is a tie
    assert "`svamp` 1.0–10.0 (EoTD largest); `asdiv` 0.0–10.0." in bullets["Seed spread"]
    assert bullets["EoT training data."] == (
        "- **EoT training data.** 4/10 (40 %) of the verified EoT rationales state a relation the solver must invert "
        "(`gsm8k_train` 1/4 (25 %), `svamp` 3/6 (50 %)); the rest are forward, the result their unknown (3 state the "
        "text's relation, 3 the gold calculation).")
    assert bullets["EoTD vs EoTD-forward"] == (
        "- **EoTD vs EoTD-forward** (EoTD − EoTD-forward): all problems: `svamp` -1.7 [-8.0, +4.6], `asdiv` +2.0 "
        "[-3.0, +7.0] (no clear difference on any set); inverse problems: `svamp` +15.0 [+5.0, +25.0] (EoTD beats "
        "EoTD-forward on `svamp`).")
    assert bullets["EoTD vs PoTD"].startswith(
        "- **EoTD vs PoTD** (EoTD − PoTD): all problems: `svamp` -2.7 [-9.3, +3.9]")


def test_findings_of_a_run_from_before_forms_read_every_row_as_all_problems(tmp_path):
    text = readme.findings_markdown(_write_findings_tier(tmp_path, forms=False))
    assert "inverse" not in text and "EoT training data" not in text
    assert "- **Decided** (1 of 6 pairs): `svamp`: PoTD beats base (+10.4 [+4.8, +16.0])." in text
    assert "No findings yet" in readme.findings_markdown(tmp_path / "missing")


def test_results_markdown_formats_numbers_from_csv(tmp_path):
    text = readme.results_markdown(_write_tier(tmp_path, "default"))
    assert "| dataset | n | base (`cot`) | EoTD (`eot`) | ETD (`fallback:pot>eot>cot`) |" in text
    assert "| `svamp` | 300 | 10.0% [7.0–13.4] | 33.0% [28.0–38.5] | 45.7% [40.0–51.0] |" in text
    assert "| `gsm_symbolic_template` | 200 | 2.0% [0.5–4.0] | 20.0% [14.5–25.5] | 25.0% [19.0–31.0] |" in text
    assert "91.7" not in text and "`gsm_symbolic_template_overlap` (n=12)" in text  # reported apart, not in the table
    assert "student HuggingFaceTB/SmolLM2-135M" in text and "1000 gsm_symbolic training questions" in text
    assert "teacher annotation (not an LLM)" in text and "; CPU (machine not recorded)." in text


def test_results_markdown_one_table_per_tier_default_first(tmp_path):
    _write_tier(tmp_path, "smoke", etd=0.1111, overlap=False)
    _write_tier(tmp_path, "default")
    _write_tier(tmp_path, "alpha")
    (tmp_path / "empty").mkdir()
    text = readme.results_markdown(tmp_path)
    heads = [line for line in text.splitlines() if line.startswith("### ")]
    assert heads == ["### `default`", "### `alpha`", "### `smoke`"]
    assert "11.1% [40.0–51.0]" in text and "45.7% [40.0–51.0]" in text
    assert readme.results_markdown(tmp_path / "missing").count("No results yet") == 1


def test_update_readme_replaces_only_between_markers_and_is_idempotent(tmp_path):
    root = tmp_path / "results"
    _write_tier(root, "default")
    path = tmp_path / "README.md"
    path.write_text(README)
    assert readme.update_readme(path, root) is True
    text = path.read_text()
    before, rest = text.split(readme.START)
    inside, after = rest.split(readme.END)
    assert before == README.split(readme.START)[0]
    assert after == README.split(readme.END)[1]
    assert "99.9%" not in text and "45.7% [40.0–51.0]" in inside
    assert text.count(readme.START) == 1 and text.count(readme.END) == 1
    assert readme.update_readme(path, root) is False
    assert path.read_text() == text
    # a changed CSV changes the section, and only it
    _write_tier(root, "smoke", etd=0.5)
    assert readme.update_readme(path, root) is True
    assert "### `smoke`" in path.read_text() and path.read_text().endswith(after)


def test_update_readme_leaves_blocks_without_markers_out_and_rejects_broken_ones(tmp_path):
    root = tmp_path / "results"
    _write_tier(root, "default")
    path = tmp_path / "README.md"
    path.write_text("# project\nbody\n")
    assert readme.update_readme(path, root) is False
    path.write_text(f"# p\n{readme.FINDINGS_START}\n{readme.FINDINGS_END}\n")
    assert readme.update_readme(path, root) is True
    assert "No findings yet" in path.read_text() and readme.START not in path.read_text()
    path.write_text(f"# p\n{readme.END}\n{readme.START}\n")
    with pytest.raises(ValueError, match="in that order"):
        readme.update_readme(path, root)


def test_missing_columns_name_the_file(tmp_path):
    tier = _write_tier(tmp_path, "default")
    pd.read_csv(tier / "accuracy.csv").drop(columns="ci_high").to_csv(tier / "accuracy.csv", index=False)
    with pytest.raises(ValueError, match=r"accuracy.csv lacks column\(s\) \['ci_high'\]"):
        readme.results_markdown(tier)


def test_main_updates_project_readme(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(paths, "ROOT", tmp_path)
    monkeypatch.setenv("EOTD_RESULTS_DIR", str(tmp_path / "results"))
    _write_tier(tmp_path / "results", "default")
    (tmp_path / "README.md").write_text(README)
    readme.main([])
    assert "updated from tiers ['default']" in capsys.readouterr().out
    assert "45.7%" in (tmp_path / "README.md").read_text()
    readme.main([])
    assert "unchanged" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="findings:start"):  # --check: a block README lacks is stale too
        readme.main(["--check"])


def test_timing_table_reads_each_tiers_run_json(tmp_path):
    root = tmp_path / "results"
    _write_tier(root, "default")
    machine = {"cpu": "Intel(R) Xeon(R) Processor", "cores": 2, "bf16": True, "gpu": None}
    stages = {f"0{i}_stage": {"seconds": 60.0 * i, "machine": machine, "git_commit": "abcdef123"} for i in (1, 2, 3)}
    stages["03_stage"].update(students={"PoTD@0": "a", "PoTD@1": "b"}, students_reused=["PoTD@1"])
    stages["02_stage"]["peak_rss_mb"], stages["03_stage"]["peak_rss_mb"] = 6400, 2100  # 01 ran before it was recorded
    (root / "default" / "run.json").write_text(json.dumps({"params_name": "default", "stages": stages}))
    _write_tier(root, "smoke")  # a run from before peak_rss_mb was recorded
    (root / "smoke" / "run.json").write_text(json.dumps({"params_name": "smoke",
                                                         "stages": {"01_stage": stages["01_stage"]}}))
    text = readme.timing_markdown(root)
    assert "| tier | machine | commit | students trained | 01 | 02 | 03 | total | peak MB |" in text
    assert "| `default` | Intel(R) Xeon(R) Processor, 2 cores, bf16 | abcdef1 | 1 of 2 | 1.0 | 2.0 | 3.0 | **6.0** | " \
        "6400 |" in text
    assert "| `smoke` | Intel(R) Xeon(R) Processor, 2 cores, bf16 | abcdef1 | — | 1.0 | — | — | **1.0** | — |" \
        in text
    path = tmp_path / "README.md"
    path.write_text(f"# p\n{readme.TIMING_START}\nold\n{readme.TIMING_END}\nrest\n")
    assert readme.update_readme(path, root) is True
    assert "**6.0**" in path.read_text() and "old" not in path.read_text()
    assert readme.update_readme(path, root) is False
    assert "No timed run yet" in readme.timing_markdown(tmp_path / "none")


def test_an_incomplete_run_is_named_in_the_findings(tmp_path):
    from eotd.readme import _run_line

    run = {"stages": {"01_data_synthesis": {"git_commit": "abcdef1234", "started": "2026-12-07T10:00:00"}},
           "incomplete": {"git_commit": "1234567abc", "pending": ["04_evaluation", "05_ablations"]}}
    line = _run_line(run)
    assert line.startswith("- **Incomplete run.** A study at 1234567 stopped before 04_evaluation, 05_ablations")
    assert "- **Run.** Commit abcdef1" in line
    del run["incomplete"]
    assert "Incomplete" not in _run_line(run)



@pytest.mark.parametrize("peak, gb", [(3000, 4), (3073, 8), (6000, 8), (7100, 8), (7300, 16)])
def test_memory_requirement_rounds_the_peak_with_headroom_up_to_a_usual_size(peak, gb):
    assert readme.memory_gb(peak) == gb


def test_requirements_state_the_default_runs_peak_and_whether_its_time_is_cold(tmp_path):
    tier = tmp_path / "default"
    tier.mkdir()
    machine = {"cpu": "AMD EPYC", "cores": 2, "bf16": False, "gpu": None}
    stages = {"01_data_synthesis": {"seconds": 60.0, "machine": machine, "peak_rss_mb": 400},
              "03_fine_tuning": {"seconds": 1800.0, "machine": machine, "peak_rss_mb": 4900,
                                 "students": {"PoTD@0": "a", "PoTD@1": "b"}, "students_reused": []}}
    (tier / "run.json").write_text(json.dumps({"stages": stages}))
    text = readme.requirements_markdown(tier)
    assert "**8 GB**" in text and "peaked at 4900 MB" in text
    assert "**31.0 min** cold (all 2 students trained in the run) on AMD EPYC, 2 cores, fp32" in text
    stages["03_fine_tuning"]["students_reused"] = ["PoTD@1"]
    (tier / "run.json").write_text(json.dumps({"stages": stages}))
    assert "cold" not in readme.requirements_markdown(tier).split("students")[0]
    assert "from the cache" in readme.requirements_markdown(tier)
    (tier / "run.json").write_text(json.dumps({"stages": {"01_data_synthesis": {"seconds": 1.0}}}))
    assert "no recorded memory" in readme.requirements_markdown(tier)
