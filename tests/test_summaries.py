import json

import pandas as pd
import pytest

from eotd import summaries


def _acc(dataset, method, strategy, correct, n, low, high):
    return {"dataset": dataset, "method": method, "strategy": strategy, "n": n, "correct": correct,
            "accuracy": correct / n, "ci_low": low, "ci_high": high}


@pytest.fixture
def out(tmp_path):
    """A results folder as the six stages leave it, with known numbers."""
    types = {"cot": {"requested": 10, "generated": 10, "verified": 9, "kept": 9,
                     "reasons": {"ok": 9, "wrong_answer": 1}},
             "pot": {"requested": 10, "generated": 10, "verified": 7, "kept": 7,
                     "reasons": {"ok": 7, "timeout": 2, "runtime_error": 1}},
             "eot": {"requested": 10, "generated": 10, "verified": 10, "kept": 10, "reasons": {"ok": 10}}}
    (tmp_path / "synthesis_summary.json").write_text(json.dumps({
        "teacher": "annotation:gold-annotations-v2", "teacher_is_llm": False, "questions": 10,
        "train_dataset": "gsm_symbolic", "sources": {"gsm_symbolic": 7, "svamp": 3}, "types": types, "etd_kept": 26, "tokens": {"total": 0}, "cost": 0.0,
        "new_teacher_calls": 0, "stopped_by_budget": False}))
    (tmp_path / "verification_summary.json").write_text(json.dumps({
        **{t: {"total": v["generated"], "verified": v["verified"], "inverts": 0, "reasons": v["reasons"]}
           for t, v in types.items()},
        "eot_forms": {"gsm_symbolic": {"inverts": 0, "text_forward": 3, "forward_fallback": 4, "verified": 7},
                      "svamp": {"inverts": 0, "text_forward": 1, "forward_fallback": 2, "verified": 3},
                      "all": {"inverts": 0, "text_forward": 4, "forward_fallback": 6, "verified": 10}}}))
    pd.DataFrame({"steps": [12, 9], "train tokens": [4000, 3000], "seconds": [40, 30], "tokens/s": [100, 100],
                  "reused": [False, True], "final loss": [0.2, 0.3], "folder": [".cache/a", ".cache/b"]},
                 index=["PoTD", "EoTD"]).to_csv(tmp_path / "training_figures.csv")
    pd.DataFrame({"method": ["PoTD"] * 20 + ["EoTD", "EoTD"], "step": [*range(1, 21), 1, 9],
                  "loss": [2.5, 2.3, *[1.0] * 16, 0.3, 0.2, 3.0, 0.5]}).to_csv(tmp_path / "training_losses.csv",
                                                                                 index=False)
    pd.DataFrame([_acc("instances", "base", "cot", 1, 200, 0.001, 0.028),
                  _acc("instances", "PoTD", "pot", 61, 200, 0.245, 0.372),
                  _acc("instances", "EoTD", "eot", 104, 200, 0.451, 0.588),
                  _acc("svamp", "base", "cot", 1, 15, 0.012, 0.298),
                  _acc("svamp", "PoTD", "pot", 1, 15, 0.012, 0.298),
                  _acc("svamp", "EoTD", "eot", 1, 15, 0.012, 0.298),
                  _acc("asdiv", "base", "cot", 0, 15, 0.0, 0.204),
                  _acc("asdiv", "EoTD", "eot", 0, 15, 0.0, 0.204),
                  _acc("svamp_overlap", "EoTD", "eot", 3, 3, 0.4, 1.0)]).to_csv(tmp_path / "accuracy.csv", index=False)
    (tmp_path / "run.json").write_text(json.dumps({"params_name": "t", "stages": {"04_evaluation": {
        "contamination": [{"eval_set": "svamp", "n_eval": 18, "n_overlap": 3}, {"eval_set": "asdiv", "n_eval": 15,
                                                                               "n_overlap": 0}]}}}))
    pd.DataFrame([{"ablation": "rationale_style", "variant": f"PoTD {style}", "method": "PoTD", "train_examples": 200,
                   "dataset": "instances", "strategy": "pot", "n": 200, "correct": c, "accuracy": c / 200,
                   "ci_low": lo, "ci_high": hi} for style, c, lo, hi in
                  [("executor", 61, 0.245, 0.372), ("commented", 93, 0.397, 0.534)]]
                 ).to_csv(tmp_path / "ablation_accuracy.csv", index=False)
    return tmp_path


def test_synthesis_and_verification_count_per_type_with_reject_reasons(out):
    text = summaries.synthesis(out)
    assert ("wrote 30/30 (100.0 %) requested rationales for 10 training questions (7 `gsm_symbolic`, 3 `svamp` "
            "(training fold)); 02 verifies them") in text
    assert "not an LLM" in text and "- PoT: 10/10 (100.0 %) written" in text
    text = summaries.verification(out)
    assert text.startswith("**02 · Verification.** 26/30 (86.7 %) requested rationales were written and pass")
    assert "; 26 kept for training" in text
    assert "- CoT: 9/10 (90.0 %) pass; 0 not written, 1 rejected by the verifier (`wrong_answer` × 1)." in text
    assert "- PoT: 7/10 (70.0 %) pass; 0 not written, 3 rejected by the verifier (`timeout` × 2, `runtime_error` × 1)." \
        in text
    assert "- EoT: 10/10 (100.0 %) pass; 0 not written, 0 rejected by the verifier." in text
    assert ("EoT: 0/10 (0.0 %) of the verified rationales state a relation the solver must invert (gsm_symbolic "
            "0/7 (0.0 %), svamp 0/3 (0.0 %)); 4 state the text's relation") in text


def test_relational_eot_is_counted_per_source_and_said(out):
    summary = json.loads((out / "verification_summary.json").read_text())
    summary["eot_forms"]["svamp"].update(inverts=2, text_forward=0, forward_fallback=1)
    summary["eot_forms"]["all"].update(inverts=2, text_forward=3, forward_fallback=5)
    (out / "verification_summary.json").write_text(json.dumps(summary))
    text = summaries.verification(out)
    assert "EoT: 2/10 (20.0 %) of the verified rationales state a relation the solver must invert" in text
    assert "svamp 2/3 (66.7 %)" in text and "5 are the forward calculation spelled as equations" in text
    del summary["eot_forms"]  # a summary without the measure says nothing of it
    (out / "verification_summary.json").write_text(json.dumps(summary))
    assert "invert" not in summaries.verification(out)


def test_fine_tuning_tables_trained_and_reused_students_per_method(out):
    text = summaries.fine_tuning(out)
    assert "2 students from the same base model: 1 trained in this run, 1 reused from the cache." in text
    assert "| PoTD | 1 | 1 / 0 | 100–100 | 2.40–2.40 → 0.25–0.25 |" in text  # means of the first and last 2 steps
    assert "| EoTD | 1 | 0 / 1 | 100–100 | 3.00–3.00 → 0.50–0.50 |" in text


def test_evaluation_lists_every_method_and_names_no_winner_without_the_test(out):
    text = summaries.evaluation(out)
    assert "- `instances` (n = 200): base 0.5% [0.1–2.8], PoTD 30.5% [24.5–37.2], EoTD 52.0% [45.1–58.8]." in text
    assert "- `svamp` (n = 15): base 6.7% [1.2–29.8], PoTD 6.7% [1.2–29.8], EoTD 6.7% [1.2–29.8]." in text
    assert "- `asdiv` (n = 15): no distilled student answers any problem correctly (base 0.0% [0.0–20.4])." in text
    assert "best" not in text and "overlap the training" in text and "intervals overlap" not in text
    assert "svamp_overlap" not in text.split("Decontamination")[0]
    assert "Decontamination: 3 of 18 `svamp` items overlap the training questions and are reported apart." in text


def test_ablations_report_each_variant_without_a_winner(out):
    text = summaries.ablations(out)
    assert ("rationale style on `instances` (n = 200): PoTD executor 30.5% [24.5–37.2] (200 examples); PoTD commented "
            "46.5% [39.7–53.4] (200 examples).") in text and "best" not in text
    (out / "ablation_accuracy.csv").unlink()
    assert summaries.ablations(out) == "**05 · Ablations.** None configured for this run."


def test_every_stage_has_a_summary(out):
    (out / "fig_accuracy_by_method.png").write_bytes(b"png")
    assert list(summaries.STAGES) == [f"{i:02d}_{s}" for i, s in enumerate(
        ["data_synthesis", "verification", "fine_tuning", "evaluation", "ablations", "plots"], 1)]
    for stage in summaries.STAGES:
        assert summaries.for_stage(stage, out).startswith(f"**{stage[:2]} · ")
    assert "1 figure: `fig_accuracy_by_method.png`" in summaries.plots(out)
    run = json.loads((out / "run.json").read_text())
    run["stages"]["06_plots"] = {"results": ["fig_b.png", "reference_comparison.csv"]}  # what this run's 06 wrote
    (out / "run.json").write_text(json.dumps(run))
    assert "1 figure: `fig_b.png`" in summaries.plots(out)


def test_evaluation_claims_only_differences_that_hold_across_seeds(out):
    from test_evaluate import one_seed_study

    from eotd.evaluate import compare_methods

    compare_methods(one_seed_study(), {"base": "cot", "PoTD": "pot", "ETD": "pot"}).to_csv(
        out / "method_comparisons.csv", index=False)
    text = summaries.evaluation(out)
    assert "pairs of a set is under 0.05, so an interval that excludes 0 can still be undecided): 1 of 3 pairs " \
           "decided: PoTD beats base on `svamp` by +58.0 points [" in text
    assert ("- Ahead, but a method of the pair was trained with one seed only, so its training noise is unmeasured "
            "and this is not claimed: ETD ahead of base on `svamp` by +88.0 points [") in text
    assert "ETD ahead of PoTD on `svamp` by +30.0 points" in text and "ETD beats" not in text
    assert "Between methods trained with several seeds" not in text  # ETD's one seed: its noise is not in an interval


def test_the_design_sentence_reads_design_csv(out):
    pd.DataFrame([{"dataset": dataset, "seed_sd": 0.05, "noise_sd": 0.3, "pair_sd": 0.2, "seeds": k, "problems": n,
                   "half_width": 0.1, "detectable": d * scale}
                  for dataset, n, scale in (("instances", 30, 2), ("svamp", 15, 1), ("svamp", 30, 0.5))
                  for k, d in ((2, 0.4), (3, 0.25), (10, 0.08))]).to_csv(out / "design.csv", index=False)
    pd.DataFrame([{"dataset": "svamp", "method": "PoTD", "strategy": "pot", "seed": s, "n": 15, "correct": 1,
                   "accuracy": 1 / 15} for s in range(3)]).to_csv(out / "accuracy_by_seed.csv", index=False)
    assert ("with 3 seeds per method, a difference between two trained methods of at least these points is found in "
            "80 % of studies like this one (smaller ones less often): `svamp` (n = 15) 25, 8 with 10 seeds; "
            "`instances` (n = 30) 50, 16 with 10 seeds.") in summaries.evaluation(out)  # each set at its own size, the paper's sets first


def test_a_single_method_has_no_comparisons_to_summarise(out):
    from eotd.evaluate import COMPARISON_COLUMNS

    pd.DataFrame(columns=COMPARISON_COLUMNS).to_csv(out / "method_comparisons.csv", index=False)
    text = summaries.evaluation(out)
    assert "EoTD 52.0% [45.1–58.8]" in text and "pairs decided" not in text


def test_etd_strategies_are_compared_only_when_several_were_scored(out):
    acc = pd.read_csv(out / "accuracy.csv")
    fallback = [_acc("instances", "ETD", "fallback:pot>eot>cot", 90, 200, 0.38, 0.52)]
    pd.concat([acc, pd.DataFrame(fallback)]).to_csv(out / "accuracy.csv", index=False)
    assert "ETD by strategy" not in summaries.evaluation(out)  # etd_generation: fallback scores that one alone
    both = fallback + [_acc("instances", "ETD", "pot", 80, 200, 0.33, 0.47)]
    pd.concat([acc, pd.DataFrame(both)]).to_csv(out / "accuracy.csv", index=False)
    assert ("- ETD by strategy, pooled over its 1 sets (200 problems): `fallback:pot>eot>cot` 45.0 %, `pot` 40.0 %."
            in summaries.evaluation(out))


def test_evaluation_says_what_stating_relations_did_by_question_form(out):
    rows = [{"dataset": d, "form": f, "a": "EoTD", "b": "EoTD-forward", "diff": diff, "diff_low": diff - 0.05,
             "diff_high": diff + 0.05, "p_holm": 0.5, "verdict": "no clear difference", "a_seeds": 5, "b_seeds": 5}
            for d, f, diff in (("svamp", "all", 0.02), ("svamp", "inverse", 0.04), ("svamp", "forward", 0.0))]
    pd.DataFrame(rows).to_csv(out / "method_comparisons.csv", index=False)
    relation, forward = "a = x\na + 5 = 12\nans = a", "a = x\na = 12 - 5\nans = a"
    pd.DataFrame([{"dataset": "svamp", "question_id": f"q{i}", "form": form, "method": f"EoTD@{seed}",
                   "thought": "eot", "output": text, "correct": right}
                  for i, (form, text, right) in enumerate([("inverse", relation, True), ("inverse", relation, False),
                                                           ("forward", forward, False), ("unknown", forward, False)])
                  for seed in (0, 1)]).to_parquet(out / "predictions.parquet", index=False)
    text = summaries.evaluation(out)
    assert "Question forms of the evaluated problems" in text and "`svamp` inverse 2, forward 1, unknown 1" in text
    assert "EoT answers that invert a relation: EoTD 4/8 (50.0 %), right 50.0 % vs 0.0 % for the rest." in text
    assert "- EoTD − EoTD-forward (all problems, and the inverse ones where a set has them): `svamp` +2.0 [-3.0, +7.0], " \
           "`svamp` inverse +4.0 [-1.0, +9.0]; every other one no clear difference." in text
