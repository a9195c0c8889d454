import json
import subprocess
import sys

import pandas as pd
import pytest

from eotd import protocol, report

README = """# project

Intro text that must stay.

<!-- results:start -->
old hand-typed table 99.9%
<!-- results:end -->

## Layout
Trailing text that must stay.
"""


def _write_tier(root, name, etd=0.4567, overlap=True):
    tier = root / name
    tier.mkdir(parents=True)
    rows = [
        ("svamp", "base", "cot", 300, 30, 0.1, 0.07, 0.134),
        ("svamp", "base", "pot", 300, 21, 0.07, 0.04, 0.1),
        ("svamp", "ETD", "pot", 300, 120, 0.4, 0.35, 0.45),
        ("svamp", "ETD", "fallback:pot>eot>cot", 300, 137, etd, 0.4, 0.51),
        ("svamp", "EoTD", "eot", 300, 99, 0.33, 0.28, 0.385),
        ("gsm_symbolic_template", "ETD", "fallback:pot>eot>cot", 200, 50, 0.25, 0.19, 0.31),
        ("gsm_symbolic_template", "EoTD", "eot", 200, 40, 0.2, 0.145, 0.255),
        ("gsm_symbolic_template", "base", "cot", 200, 4, 0.02, 0.005, 0.04),
    ]
    if overlap:
        rows.append(("gsm_symbolic_template_overlap", "ETD", "fallback:pot>eot>cot", 12, 11, 0.9167, 0.75, 1.0))
    pd.DataFrame(rows, columns=protocol.ACCURACY_COLUMNS).to_csv(tier / "accuracy.csv", index=False)
    (tier / "run.json").write_text(json.dumps({"params_name": name, "stages": {
        "synthesis": {"params": {"name": name, "train_questions": 1000, "train_dataset": "gsm_symbolic",
                                 "teacher": "annotation"}},
        "train": {"params": {"student": "HuggingFaceTB/SmolLM2-135M"}}}}))
    (tier / "synthesis_summary.json").write_text(json.dumps({"teacher": "annotation", "teacher_is_llm": False,
                                                             "types": {}, "tokens": {}, "cost": 0.0}))
    return tier


def test_headline_strategies_defaults_and_base_best_single(tmp_path):
    acc = pd.read_csv(_write_tier(tmp_path, "default") / "accuracy.csv")
    assert protocol.headline_strategies(acc) == {"base": "cot", "EoTD": "eot", "ETD": "fallback:pot>eot>cot"}
    rows = report.headline(acc)
    assert len(rows) == 6 and not rows["dataset"].str.endswith("_overlap").any()


def test_protocol_imports_without_pandas():
    """The headline strategy lives in protocol, which every stage imports: pandas only comes with the tables."""
    code = "import sys, eotd.protocol; assert 'pandas' not in sys.modules, 'protocol imported pandas'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_results_markdown_formats_numbers_from_csv(tmp_path):
    text = report.results_markdown(_write_tier(tmp_path, "default"))
    assert "| dataset | n | base (`cot`) | EoTD (`eot`) | ETD (`fallback:pot>eot>cot`) |" in text
    assert "| `svamp` | 300 | 10.0% [7.0–13.4] | 33.0% [28.0–38.5] | 45.7% [40.0–51.0] |" in text
    assert "| `gsm_symbolic_template` | 200 | 2.0% [0.5–4.0] | 20.0% [14.5–25.5] | 25.0% [19.0–31.0] |" in text
    assert "91.7" not in text and "`gsm_symbolic_template_overlap` (n=12)" in text  # reported apart, not in the table
    assert "student HuggingFaceTB/SmolLM2-135M" in text and "1000 gsm_symbolic training questions" in text
    assert "teacher annotation (not an LLM)" in text and "; CPU." in text


def test_results_markdown_one_table_per_tier_default_first(tmp_path):
    _write_tier(tmp_path, "smoke", etd=0.1111, overlap=False)
    _write_tier(tmp_path, "default")
    _write_tier(tmp_path, "alpha")
    (tmp_path / "empty").mkdir()
    text = report.results_markdown(tmp_path)
    heads = [line for line in text.splitlines() if line.startswith("### ")]
    assert heads == ["### `default`", "### `alpha`", "### `smoke`"]
    assert "11.1% [40.0–51.0]" in text and "45.7% [40.0–51.0]" in text
    assert report.results_markdown(tmp_path / "missing").count("No results yet") == 1


def test_update_readme_replaces_only_between_markers_and_is_idempotent(tmp_path):
    root = tmp_path / "results"
    _write_tier(root, "default")
    readme = tmp_path / "README.md"
    readme.write_text(README)
    assert report.update_readme(readme, root) is True
    text = readme.read_text()
    before, rest = text.split(report.START)
    inside, after = rest.split(report.END)
    assert before == README.split(report.START)[0]
    assert after == README.split(report.END)[1]
    assert "99.9%" not in text and "45.7% [40.0–51.0]" in inside
    assert text.count(report.START) == 1 and text.count(report.END) == 1
    assert report.update_readme(readme, root) is False
    assert readme.read_text() == text
    # a changed CSV changes the section, and only it
    _write_tier(root, "smoke", etd=0.5)
    assert report.update_readme(readme, root) is True
    assert "### `smoke`" in readme.read_text() and readme.read_text().endswith(after)


def test_update_readme_appends_markers_when_absent_and_rejects_broken_ones(tmp_path):
    root = tmp_path / "results"
    _write_tier(root, "default")
    readme = tmp_path / "README.md"
    readme.write_text("# project\nbody\n")
    assert report.update_readme(readme, root) is True
    text = readme.read_text()
    assert text.startswith("# project\nbody\n\n" + report.START) and text.endswith(report.END + "\n")
    assert report.update_readme(readme, root) is False
    readme.write_text(f"# p\n{report.END}\n{report.START}\n")
    with pytest.raises(ValueError, match="in that order"):
        report.update_readme(readme, root)


def test_setting_line_reads_a_recorded_device():
    stage = {"params": {"student": "s", "train_questions": None}, "device": "cuda"}
    params = report.run_params({"stages": {"eval": stage}})
    line = report.setting_line(params, {"teacher": "gpt-3.5-turbo", "teacher_is_llm": True})
    assert line == "student s; teacher gpt-3.5-turbo (LLM); all ? training questions; cuda"


def test_missing_columns_name_the_file(tmp_path):
    tier = _write_tier(tmp_path, "default")
    pd.read_csv(tier / "accuracy.csv").drop(columns="ci_high").to_csv(tier / "accuracy.csv", index=False)
    with pytest.raises(ValueError, match=r"accuracy.csv lacks column\(s\) \['ci_high'\]"):
        report.results_markdown(tier)


def test_main_updates_project_readme(tmp_path, monkeypatch, capsys):
    from eotd import paths

    monkeypatch.setattr(paths, "ROOT", tmp_path)
    monkeypatch.setenv("EOTD_RESULTS_DIR", str(tmp_path / "results"))
    _write_tier(tmp_path / "results", "default")
    (tmp_path / "README.md").write_text(README)
    report.main()
    assert "updated from tiers ['default']" in capsys.readouterr().out
    assert "45.7%" in (tmp_path / "README.md").read_text()
    report.main()
    assert "unchanged" in capsys.readouterr().out


def test_headline_and_strategy_pivots_are_compact_tables_with_intervals(tmp_path):
    acc = pd.read_csv(_write_tier(tmp_path, "default") / "accuracy.csv")
    table = report.headline_pivot(acc)
    assert list(table.index) == ["svamp", "gsm_symbolic_template"]  # no _overlap row
    assert list(table.columns) == ["n", "base (cot)", "EoTD (eot)", "ETD (fallback:pot>eot>cot)"]
    assert table.loc["svamp"].tolist() == ["300", "10.0% [7.0–13.4]", "33.0% [28.0–38.5]", "45.7% [40.0–51.0]"]
    etd = report.strategy_pivot(acc, "ETD")
    assert list(etd.columns) == ["pot", "fallback:pot>eot>cot"]  # single thoughts first
    assert etd.loc["svamp", "pot"] == "40.0% [35.0–45.0]" and pd.isna(etd.loc["gsm_symbolic_template", "pot"])


def test_ablation_headline_reads_each_variant_at_its_own_strategy():
    rows = [("thought_mix", "eot+pot", "mix:pot+eot", 40, "svamp", "pot", 0.2),
            ("thought_mix", "eot+pot", "mix:pot+eot", 40, "svamp", "fallback:pot>eot>cot", 0.3),
            ("thought_mix", "eot+pot", "mix:pot+eot", 40, "svamp", "vote", 0.25),
            ("thought_mix", "cot", "CoTD", 20, "svamp", "cot", 0.1),
            ("data_size", "ETD 50%", "ETD:50%", 30, "svamp", "cot", 0.05),
            ("data_size", "ETD 50%", "ETD:50%", 30, "svamp", "fallback:pot>eot>cot", 0.35),
            ("rationale_style", "PoTD commented", "PoTD:commented", 20, "svamp", "pot", 0.4),
            ("rationale_style", "PoTD commented", "PoTD:commented", 20, "svamp_overlap", "pot", 0.9)]
    table = pd.DataFrame([{"ablation": a, "variant": v, "method": m, "train_examples": e, "dataset": d,
                           "strategy": s, "n": 100, "correct": round(100 * x), "accuracy": x, "ci_low": x - 0.05,
                           "ci_high": x + 0.05} for a, v, m, e, d, s, x in rows])
    picked = report.ablation_headline(table)
    assert picked[["variant", "strategy", "accuracy"]].values.tolist() == [
        ["pot+eot", "fallback:pot>eot>cot", 0.3], ["cot", "cot", 0.1], ["ETD 50%", "fallback:pot>eot>cot", 0.35],
        ["PoTD commented", "pot", 0.4]]
    pivot = report.ablation_pivot(table)
    assert pivot.loc[("data_size", "ETD 50%", 30), "svamp"] == "35.0% [30.0–40.0]"
    assert list(pivot.columns) == ["svamp"]
    with pytest.raises(ValueError, match="data_size 'ETD 50%' on svamp: 2 rows"):
        report.ablation_headline(pd.concat([table, table.iloc[[5]]]))


def test_tables_lead_with_the_papers_four_benchmarks():
    from eotd.report import dataset_order

    assert dataset_order(["asdiv", "gsm_symbolic_template", "svamp", "gsm8k_test", "multiarith", "asdiv"]) == [
        "gsm8k_test", "svamp", "asdiv", "multiarith", "gsm_symbolic_template"]
    rows = [{"dataset": d, "method": "PoTD", "strategy": "pot", "n": 10, "correct": 1, "accuracy": 0.1,
             "ci_low": 0.0, "ci_high": 0.4} for d in ("gsm_symbolic_template", "asdiv", "svamp")]
    table = report.headline_pivot(pd.DataFrame(rows), domains={"svamp": "in-domain"})
    assert list(table.index) == ["svamp", "asdiv", "gsm_symbolic_template"]
    assert list(table["domain"]) == ["in-domain", "—", "—"]


def test_seed_pivot_reads_as_a_range_over_seeds_not_an_interval():
    from eotd.report import seed_pivot

    by_seed = pd.DataFrame([{"dataset": "svamp", "method": "PoTD", "strategy": "pot", "seed": s, "n": 200,
                             "correct": c, "accuracy": c / 200} for s, c in enumerate((20, 30, 40))]
                           + [{"dataset": "svamp", "method": "ETD", "strategy": "fallback:pot>eot>cot", "seed": 0,
                               "n": 200, "correct": 8, "accuracy": 0.04}])
    table = seed_pivot(by_seed, {"PoTD": "pot", "ETD": "fallback:pot>eot>cot"})
    assert table.loc["svamp"].to_dict() == {"PoTD": "15.0% (10.0–20.0 over 3 seeds)", "ETD": "4.0% (1 seed)"}


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
    text = report.timing_markdown(root)
    assert "| tier | machine | commit | students trained | 01 | 02 | 03 | total | peak MB |" in text
    assert "| `default` | Intel(R) Xeon(R) Processor, 2 cores, bf16 | abcdef1 | 1 of 2 | 1.0 | 2.0 | 3.0 | **6.0** | " \
        "6400 |" in text
    assert "| `smoke` | Intel(R) Xeon(R) Processor, 2 cores, bf16 | abcdef1 | — | 1.0 | — | — | **1.0** | — |" \
        in text
    readme = tmp_path / "README.md"
    readme.write_text(f"# p\n{report.TIMING_START}\nold\n{report.TIMING_END}\nrest\n")
    assert report.update_readme(readme, root) is True
    assert "**6.0**" in readme.read_text() and "old" not in readme.read_text()
    assert report.update_readme(readme, root) is False
    assert "No timed run yet" in report.timing_markdown(tmp_path / "none")
