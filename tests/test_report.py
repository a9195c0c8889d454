import json
import subprocess
import sys

import pandas as pd
import pytest

from eotd import protocol, tables


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
    rows = tables.headline(acc)
    assert len(rows) == 6 and not rows["dataset"].str.endswith("_overlap").any()


def test_protocol_imports_without_pandas():
    """The headline strategy lives in protocol, which every stage imports: pandas only comes with the tables."""
    code = "import sys, eotd.protocol; assert 'pandas' not in sys.modules, 'protocol imported pandas'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_setting_line_names_the_runs_gpu_or_cpu():
    cpu = {"cpu": "Intel(R) Xeon(R) Processor", "cores": 2, "bf16": True, "gpu": None}
    gpu = {**cpu, "cores": 16, "gpu": "NVIDIA H100 80GB HBM3"}
    summary = {"teacher": "gpt-3.5-turbo", "teacher_is_llm": True}
    stage = {"params": {"student": "s", "train_questions": None}}

    def line(*machines):
        run = {"stages": {f"0{i}": {**stage, "machine": m} for i, m in enumerate(machines)}}
        return tables.setting_line(tables.run_params(run), summary)

    assert line(cpu) == ("student s; teacher gpt-3.5-turbo (LLM); all ? training questions; "
                         "CPU Intel(R) Xeon(R) Processor (2 cores, bf16)")
    assert line({**cpu, "bf16": False}).endswith("; CPU Intel(R) Xeon(R) Processor (2 cores, fp32)")
    assert line(cpu, gpu, cpu).endswith("; GPU NVIDIA H100 80GB HBM3")  # training on a GPU makes it a GPU run
    assert line().endswith("; CPU (machine not recorded)")


def test_headline_and_strategy_pivots_are_compact_tables_with_intervals(tmp_path):
    acc = pd.read_csv(_write_tier(tmp_path, "default") / "accuracy.csv")
    table = tables.headline_pivot(acc)
    assert list(table.index) == ["svamp", "gsm_symbolic_template"]  # no _overlap row
    assert list(table.columns) == ["n", "base (cot)", "EoTD (eot)", "ETD (fallback:pot>eot>cot)"]
    assert table.loc["svamp"].tolist() == ["300", "10.0% [7.0–13.4]", "33.0% [28.0–38.5]", "45.7% [40.0–51.0]"]
    etd = tables.strategy_pivot(acc, "ETD")
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
    picked = tables.ablation_headline(table)
    assert picked[["variant", "strategy", "accuracy"]].values.tolist() == [
        ["pot+eot", "fallback:pot>eot>cot", 0.3], ["cot", "cot", 0.1], ["ETD 50%", "fallback:pot>eot>cot", 0.35],
        ["PoTD commented", "pot", 0.4]]
    pivot = tables.ablation_pivot(table)
    assert pivot.loc[("data_size", "ETD 50%", 30), "svamp"] == "35.0% [30.0–40.0]"
    assert list(pivot.columns) == ["svamp"]
    with pytest.raises(ValueError, match="data_size 'ETD 50%' on svamp: 2 rows"):
        tables.ablation_headline(pd.concat([table, table.iloc[[5]]]))


def test_tables_lead_with_the_papers_four_benchmarks():
    from eotd.tables import dataset_order

    assert dataset_order(["asdiv", "gsm_symbolic_template", "svamp", "gsm8k_test", "multiarith", "asdiv"]) == [
        "gsm8k_test", "svamp", "asdiv", "multiarith", "gsm_symbolic_template"]
    rows = [{"dataset": d, "method": "PoTD", "strategy": "pot", "n": 10, "correct": 1, "accuracy": 0.1,
             "ci_low": 0.0, "ci_high": 0.4} for d in ("gsm_symbolic_template", "asdiv", "svamp")]
    table = tables.headline_pivot(pd.DataFrame(rows), domains={"svamp": "in-domain"})
    assert list(table.index) == ["svamp", "asdiv", "gsm_symbolic_template"]
    assert list(table["domain"]) == ["in-domain", "—", "—"]


def test_seed_pivot_reads_as_a_range_over_seeds_not_an_interval():
    from eotd.tables import seed_pivot

    by_seed = pd.DataFrame([{"dataset": "svamp", "method": "PoTD", "strategy": "pot", "seed": s, "n": 200,
                             "correct": c, "accuracy": c / 200} for s, c in enumerate((20, 30, 40))]
                           + [{"dataset": "svamp", "method": "ETD", "strategy": "fallback:pot>eot>cot", "seed": 0,
                               "n": 200, "correct": 8, "accuracy": 0.04}])
    table = seed_pivot(by_seed, {"PoTD": "pot", "ETD": "fallback:pot>eot>cot"})
    assert table.loc["svamp"].to_dict() == {"PoTD": "15.0% (10.0–20.0 over 3 seeds)", "ETD": "4.0% (1 seed)"}
