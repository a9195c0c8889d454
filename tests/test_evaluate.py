import math

import numpy as np
import pandas as pd
import pytest

from eotd.evaluate import (NO_CLEAR_DIFFERENCE, accuracy_by_seed, accuracy_table, combine, compare_methods,
                            design_table, examples, no_answer_table, score)
from eotd.stats import Runs, difference, mean_interval, wilson_ci

GOOD_POT = "x = 3\nans = x + 4"
CRASH_POT = "ans = 1 / 0"
GOOD_EOT = "a = x\n2 * a = 14\nans = a"
UNDER_EOT = "a = x\nb = y\na + b = 5\nans = a"


def out(thought, output, gold=7, method="ETD", qid="q1", dataset="gsm8k"):
    return {"dataset": dataset, "question_id": qid, "method": method, "thought": thought,
            "output": output, "gold": gold}


def test_a_float_gold_is_compared_within_tolerance():
    # gsm_hard's golds are floats; predictions carry them as text (str of the float)
    scored = score([out("cot", "The answer is 14053029.67.", str(14053029.666666666)),
                    out("cot", "The answer is 14000000.", str(14053029.666666666))])
    assert [s["correct"] for s in scored] == [True, False]


def test_an_output_with_its_verdict_is_not_verified_again():
    first = score([out("pot", GOOD_POT)])[0]
    marked = {**first, "reason": "timeout", "correct": False, "answered": False}  # as if it had timed out once
    again = score([marked, out("pot", GOOD_POT)])
    assert again[0] == marked and again[1]["correct"] is True


def test_score_reasons_answers_and_answered():
    scored = score([out("pot", GOOD_POT), out("pot", CRASH_POT), out("eot", UNDER_EOT),
                    out("cot", "3 + 4 = 7. The answer is 7."), out("cot", "The answer is 8.")])
    got = [(s["answer"], s["reason"], s["correct"], s["answered"]) for s in scored]
    assert got == [
        ("7", "ok", True, True),
        (None, "runtime_error", False, False),
        (None, "underdetermined", False, False),
        ("7", "ok", True, True),
        ("8", "wrong_answer", False, True),
    ]
    assert scored[0]["output"] == GOOD_POT  # input fields are kept


def trio(qid, pot, eot, cot, gold=7):
    """One ETD question's three outputs."""
    return [out("pot", pot, gold, qid=qid), out("eot", eot, gold, qid=qid), out("cot", cot, gold, qid=qid)]


def pick(rows, qid, strategy):
    return next(r for r in rows if r["question_id"] == qid and r["strategy"] == strategy)


def test_fallback_uses_next_thought_only_when_no_answer():
    scored = score(trio("a", CRASH_POT, GOOD_EOT, "The answer is 7.")
                   + trio("b", "ans = 9", GOOD_EOT, "The answer is 7.")
                   + trio("c", CRASH_POT, UNDER_EOT, "No idea."))
    rows = combine(scored)
    a, b, c = (pick(rows, q, "fallback:pot>eot>cot") for q in "abc")
    assert (a["thought_used"], a["answer"], a["correct"]) == ("eot", "7", True)
    # PoT produced a wrong answer: that answer is used even though EoT and CoT were right.
    assert (b["thought_used"], b["answer"], b["reason"], b["correct"]) == ("pot", "9", "wrong_answer", False)
    assert (c["thought_used"], c["answer"], c["reason"], c["correct"]) == (None, None, "none_answered", False)
    custom = combine(scored, fallback_orders=[["cot", "pot", "eot"], ["pot", "eot", "cot"]])
    cot_first = pick(custom, "b", "fallback:cot>pot>eot")
    assert (cot_first["thought_used"], cot_first["answer"], cot_first["correct"]) == ("cot", "7", True)
    assert pick(custom, "b", "fallback:pot>eot>cot")["thought_used"] == "pot"


def test_vote_majority_ties_and_numeric_grouping():
    scored = score(
        trio("maj", "ans = 9", GOOD_EOT, "The answer is 7.")  # 2-vs-1: pot is first in the tie order but alone
        + trio("split", "ans = 9", GOOD_EOT, "The answer is 5.")  # three-way split: the tie order decides
        # 0.5 (PoT float) and 1/2 (EoT Fraction) are one group
        + trio("num", "ans = 1 / 2", "a = x\n2 * a = 1\nans = a", "The answer is 3.", gold="0.5")
        + trio("none", CRASH_POT, UNDER_EOT, "Hmm.")
    )
    rows = combine(scored)
    maj, split, none = (pick(rows, q, "vote") for q in ("maj", "split", "none"))
    assert (maj["answer"], maj["thought_used"], maj["correct"]) == ("7", "eot+cot", True)
    assert (split["answer"], split["thought_used"], split["correct"]) == ("9", "pot", False)
    assert (none["reason"], none["correct"]) == ("none_answered", False)
    split_eot_first = pick(combine(scored, vote_tie_order=["eot", "cot", "pot"]), "split", "vote")
    assert (split_eot_first["answer"], split_eot_first["correct"]) == ("7", True)
    # even with CoT first in the tie order, the grouped 0.5 == 1/2 majority wins
    num = pick(combine(scored, vote_tie_order=["cot", "pot", "eot"]), "num", "vote")
    assert (num["thought_used"], num["answer"], num["correct"]) == ("pot+eot", "0.5", True)


def test_strategies_only_for_thoughts_present():
    scored = score([out("cot", "The answer is 7.", method="CoTD"),
                    out("pot", GOOD_POT, method="PoTD"),
                    out("pot", GOOD_POT, method="ablation"), out("eot", GOOD_EOT, method="ablation")])
    strategies = {}
    for r in combine(scored):
        strategies.setdefault(r["method"], []).append(r["strategy"])
    assert strategies == {"CoTD": ["cot"], "PoTD": ["pot"], "ablation": ["pot", "eot", "fallback:pot>eot>cot", "vote"]}


def test_combine_rejects_duplicate_thoughts():
    rows = score([out("cot", "The answer is 7."), out("cot", "The answer is 7.")])
    with pytest.raises(ValueError):
        combine(rows)


def combined_rows():
    rows = []
    for i in range(10):  # gsm8k ETD: cot 6/10, vote 8/10; svamp CoTD: cot 3/4
        rows.append({"dataset": "gsm8k", "method": "ETD", "question_id": i, "strategy": "cot", "correct": i < 6})
        rows.append({"dataset": "gsm8k", "method": "ETD", "question_id": i, "strategy": "vote", "correct": i < 8})
    rows += [{"dataset": "svamp", "method": "CoTD", "question_id": i, "strategy": "cot", "correct": i != 2}
             for i in range(4)]
    rows.insert(0, rows.pop())  # input order must not matter
    return rows


def test_accuracy_table_values_and_shape():
    table = accuracy_table(combined_rows())
    assert list(table.columns) == ["dataset", "method", "strategy", "n", "correct", "accuracy", "ci_low", "ci_high"]
    assert table[["dataset", "method", "strategy", "n", "correct", "accuracy"]].values.tolist() == [
        ["gsm8k", "ETD", "cot", 10, 6, 0.6],
        ["gsm8k", "ETD", "vote", 10, 8, 0.8],
        ["svamp", "CoTD", "cot", 4, 3, 0.75],
    ]
    assert ((table.ci_low <= table.accuracy) & (table.accuracy <= table.ci_high)).all()
    assert ((table.ci_low >= 0) & (table.ci_high <= 1)).all()
    pd.testing.assert_frame_equal(table, accuracy_table(combined_rows()))
    assert list(accuracy_table([]).columns) == list(table.columns)


def test_wilson_ci_on_known_counts():
    # reference values from the closed form (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n), z = 1.959964
    low, high = wilson_ci(0, 200)
    assert low == 0 and abs(high - 0.018845) < 1e-5  # never collapses to [0, 0]
    low, high = wilson_ci(45, 200)
    assert abs(low - 0.172624) < 1e-5 and abs(high - 0.287741) < 1e-5
    low, high = wilson_ci(10, 10)
    assert abs(low - 0.722467) < 1e-5 and high == 1
    assert all(math.isnan(v) for v in wilson_ci(0, 0))


def test_no_answer_table_counts_outputs_without_an_answer_by_reason():
    scored = score([out("pot", CRASH_POT, qid="a"), out("pot", CRASH_POT, qid="b"), out("pot", GOOD_POT, qid="c"),
                    out("eot", UNDER_EOT, qid="a"), out("eot", GOOD_EOT, qid="b"), out("eot", GOOD_EOT, qid="c"),
                    out("cot", "The answer is 8.", method="base", qid="a")])
    table = no_answer_table(scored)
    assert list(table.index) == [("base", "cot"), ("ETD", "eot"), ("ETD", "pot")]  # base first, then by thought
    assert list(table.columns) == ["outputs", "without answer", "without answer %", "runtime_error",
                                   "underdetermined"]  # ok / wrong_answer are answers: no column
    assert table.loc[("ETD", "pot")].tolist() == [3, 2, pytest.approx(66.7), 2, 0]
    assert table.loc[("ETD", "eot")].tolist() == [3, 1, pytest.approx(33.3), 0, 1]
    assert table.loc[("base", "cot")].tolist() == [1, 0, 0.0, 0, 0]
    assert table["runtime_error"].dtype.kind == "i"  # whole counts, not floats
    assert list(no_answer_table([]).columns) == ["outputs", "without answer", "without answer %"]


def test_examples_show_what_the_student_wrote_for_the_thought_used():
    outputs = [out("pot", CRASH_POT, qid="a"), out("eot", UNDER_EOT, qid="a"),
               out("cot", "So 8. The answer is 8.", qid="a"), out("pot", GOOD_POT, qid="b"),
               out("eot", GOOD_EOT, qid="b"), out("cot", "The answer is 7.", qid="b")]
    for o in outputs:
        o["raw_output"] = o["output"] + "\n<end>"
    scored = score(outputs)
    combined = combine(scored)
    wrong = examples(scored, combined, "ETD", correct=False, k=10)
    assert {(r["question_id"], r["strategy"]) for r in wrong} == {
        ("a", "pot"), ("a", "eot"), ("a", "cot"), ("a", "fallback:pot>eot>cot"), ("a", "vote")}
    fallback = next(r for r in wrong if r["strategy"] == "fallback:pot>eot>cot")
    assert (fallback["thought"], fallback["output"]) == ("cot", "So 8. The answer is 8.\n<end>")  # pot, eot gave none
    right = examples(scored, combined, "ETD", correct=True, k=5, strategy="vote")
    assert [(r["question_id"], r["thought"], r["output"]) for r in right] == [("b", "pot", GOOD_POT + "\n<end>")]
    assert examples(scored, combined, "ETD", True, k=2, seed=5) == examples(scored, combined, "ETD", True, k=2, seed=5)
    assert examples(scored, combined, "CoTD", correct=True) == []


# ------------------------------------------------------------------------------------------- seeds and paired tests

def seeded_rows(method: str, flags_by_seed: dict, dataset="svamp", strategy="pot"):
    return [{"dataset": dataset, "method": f"{method}@{seed}" if seed is not None else method, "question_id": f"q{i}",
             "strategy": strategy, "correct": bool(flag)}
            for seed, flags in flags_by_seed.items() for i, flag in enumerate(flags)]


def test_accuracy_is_the_exact_mean_over_seeds_with_an_interval_over_seeds_and_problems():
    combined = seeded_rows("PoTD", {0: [1, 1, 0, 0], 1: [1, 1, 1, 0], 2: [1, 1, 0, 0]}) + \
        seeded_rows("base", {None: [1, 0, 0, 0]}, strategy="cot")
    table = accuracy_table(combined).set_index("method")
    assert table.loc["PoTD", "n"] == 4 and table.loc["PoTD", "correct"] == pytest.approx(7 / 3)  # not rounded to 2
    assert table.loc["PoTD", "accuracy"] == pytest.approx(7 / 12)
    flags = [[1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 0, 0]]
    assert (table.loc["PoTD", "ci_low"], table.loc["PoTD", "ci_high"]) == pytest.approx(mean_interval(Runs(flags)))
    assert (table.loc["base", "ci_low"], table.loc["base", "ci_high"]) == pytest.approx(wilson_ci(1, 4))
    assert table.loc["base", "n"] == 4 and table.loc["base", "correct"] == 1
    by_seed = accuracy_by_seed(combined)
    assert list(by_seed.columns) == ["dataset", "method", "strategy", "seed", "n", "correct", "accuracy"]
    assert by_seed.set_index("seed")["correct"].to_dict() == {0: 2, 1: 3, 2: 2}  # base has no seed: not listed
    assert set(by_seed["method"]) == {"PoTD"} and set(by_seed["n"]) == {4}


def test_comparison_gives_the_difference_with_its_interval_from_stats():
    a = {0: [1] * 50 + [0] * 50, 1: [1] * 46 + [0] * 54, 2: [1] * 53 + [0] * 47}
    b = {0: [1] * 30 + [0] * 70, 1: [1] * 26 + [0] * 74}
    table = compare_methods(seeded_rows("ETD", a) + seeded_rows("PoTD", b), {"PoTD": "pot", "ETD": "pot"})
    row = table.iloc[0]
    expected = difference(Runs(list(b.values())), Runs(list(a.values())))
    assert (row["a"], row["b"]) == ("PoTD", "ETD") and (row["a_seeds"], row["b_seeds"]) == (2, 3)
    assert row["diff"] == pytest.approx(0.28 - 149 / 300)
    assert (row["diff_low"], row["diff_high"], row["p_value"]) == pytest.approx(
        (expected["diff_low"], expected["diff_high"], expected["p_value"]))
    assert row["p_holm"] == row["p_value"] and row["verdict"] == "ETD beats PoTD"


def test_seeds_that_disagree_leave_no_clear_difference():
    strong, weak, unlucky = [1] * 50 + [0] * 50, [1] * 30 + [0] * 70, [1] * 20 + [0] * 80
    combined = seeded_rows("ETD", {0: strong, 1: unlucky}) + seeded_rows("PoTD", {0: weak, 1: weak})
    row = compare_methods(combined, {"PoTD": "pot", "ETD": "pot"}).iloc[0]
    assert (row["a"], row["diff"]) == ("PoTD", pytest.approx(-0.05)) and row["diff_low"] < 0 < row["diff_high"]
    assert row["verdict"] == NO_CLEAR_DIFFERENCE


def test_holm_corrects_within_a_dataset_family():
    # three methods on 60 problems: the p-values of a family of three pairs are adjusted together
    rng = np.random.default_rng(0)
    combined = [r for m, p in (("CoTD", 0.3), ("PoTD", 0.38), ("EoTD", 0.34))
                for r in seeded_rows(m, {s: rng.random(60) < p + rng.normal(0, 0.02) for s in range(3)})]
    table = compare_methods(combined, {"CoTD": "pot", "PoTD": "pot", "EoTD": "pot"})
    assert len(table) == 3 and (table["p_holm"] >= table["p_value"]).all()
    assert table["p_holm"].min() == pytest.approx(min(1.0, 3 * table["p_value"].min()))


def one_seed_study() -> list[dict]:
    """100 svamp problems: base right on 2, PoTD (three seeds) on 59, 60 and 61, ETD (one seed) on 90."""
    return seeded_rows("ETD", {0: [1] * 90 + [0] * 10}) + \
        seeded_rows("PoTD", {s: [1] * k + [0] * (100 - k) for s, k in enumerate((59, 60, 61))}) + \
        seeded_rows("base", {None: [1] * 2 + [0] * 98}, strategy="cot")


def test_a_method_trained_with_one_seed_is_ahead_but_not_claimed_to_beat():
    table = compare_methods(one_seed_study(), {"base": "cot", "PoTD": "pot", "ETD": "pot"}).set_index(["a", "b"])
    assert table.loc[("base", "PoTD"), "verdict"] == "PoTD beats base"  # the untrained base needs no seeds
    assert table.loc[("PoTD", "ETD"), "diff"] == pytest.approx(-0.30) and table.loc[("PoTD", "ETD"), "p_holm"] < 0.05
    assert table.loc[("PoTD", "ETD"), "verdict"] == "ETD ahead of PoTD on one training seed"
    assert table.loc[("base", "ETD"), "verdict"] == "ETD ahead of base on one training seed"


def test_compare_methods_reads_each_method_at_its_strategy():
    combined = seeded_rows("PoTD", {0: [1] * 30 + [0] * 10, 1: [0] * 10 + [1] * 30, 2: [1] * 29 + [0] * 11}) + \
        seeded_rows("PoTD", {0: [0] * 40, 1: [0] * 40, 2: [0] * 40}, strategy="cot") + \
        seeded_rows("base", {None: [1] * 2 + [0] * 38}, strategy="cot")
    table = compare_methods(combined, {"base": "cot", "PoTD": "pot"})
    assert len(table) == 1
    row = table.iloc[0]
    assert (row["a"], row["b"], row["a_strategy"], row["b_strategy"]) == ("base", "PoTD", "cot", "pot")
    assert row["verdict"] == "PoTD beats base" and row["a_seeds"] == 1 and row["b_seeds"] == 3


def test_design_table_sizes_seeds_and_problems_from_the_run():
    rng = np.random.default_rng(4)
    chance = rng.beta(1, 4, 100)
    combined = [r for m in ("PoTD", "EoTD") for r in seeded_rows(
        m, {s: rng.random(100) < np.clip(chance + rng.normal(0, 0.07), 0, 1) for s in range(3)})]
    combined += seeded_rows("base", {None: rng.random(100) < 0.05}, strategy="cot")
    design = design_table(combined, {"base": "cot", "PoTD": "pot", "EoTD": "pot"})
    assert list(design.columns) == ["dataset", "seed_sd", "noise_sd", "pair_sd", "seeds", "problems", "half_width",
                                    "detectable"]
    assert set(design["seeds"]) == {2, 3, 5, 8, 10} and set(design["problems"]) == {100, 200}
    at = design.set_index(["seeds", "problems"])
    assert at.loc[(10, 100), "half_width"] < at.loc[(3, 100), "half_width"]
    assert at.loc[(3, 200), "detectable"] < at.loc[(3, 100), "detectable"]
    assert design_table(seeded_rows("base", {None: [1, 0]}, strategy="cot"), {"base": "cot"}).empty


def test_methods_pair_on_the_problems_they_share_by_id_and_one_problem_decides_nothing():
    a = seeded_rows("PoTD", {0: [1, 1, 0, 0], 1: [1, 0, 0, 0]})
    b = seeded_rows("EoTD", {0: [0, 0, 1, 1], 1: [0, 0, 1, 0]})
    shuffled = [r for r in a if r["question_id"] != "q3"] + b[::-1]  # PoTD lacks q3; rows in any order
    row = compare_methods(shuffled, {"PoTD": "pot", "EoTD": "pot"}).iloc[0]
    assert row["diff"] == pytest.approx(3 / 6 - 2 / 6)  # on q0–q2 only, paired by id
    one = seeded_rows("PoTD", {0: [1], 1: [1]}, dataset="svamp_overlap") + \
        seeded_rows("base", {None: [0]}, dataset="svamp_overlap", strategy="cot")
    row = compare_methods(one, {"base": "cot", "PoTD": "pot"}).iloc[0]
    assert (row["p_value"], row["diff_low"], row["diff_high"], row["verdict"]) == (1.0, -1.0, 1.0, NO_CLEAR_DIFFERENCE)


def test_seeds_that_score_alike_keep_their_degrees_of_freedom_and_intervals_stay_honest_at_zero():
    tie = difference(Runs([[1] * 16 + [0] * 16] * 3), Runs([[1] * 8 + [0] * 24], trained=False))
    assert tie["df"] == 2  # three seeds: k - 1, not the problems' n - 1
    low, high = mean_interval(Runs(np.zeros((3, 30))))
    assert low == 0 and high == pytest.approx(wilson_ci(0, 30)[1])  # never [0, 0]
