import time

import pytest

from eotd.data import Problem, load, load_gsm_symbolic
from eotd.decontaminate import (DEFAULT_N, DEFAULT_THRESHOLD, NUM, OverlapIndex, find_overlaps, ngrams, normalize,
                                report, split_clean)

EMILY = ("Emily can peel 6 shrimp a minute and saute 30 shrimp in 10 minutes. How long will it take her to peel and "
         "cook 90 shrimp?")


def test_normalize_masks_numbers_and_drops_punctuation():
    assert normalize("Emily can peel 6 shrimp, for $1,200.50!") == \
        ["emily", "can", "peel", NUM, "shrimp", "for", NUM]
    assert normalize("Emily can peel 6 shrimp") == normalize("Emily can peel 9 shrimp")
    assert normalize("3/4 of 50% is twenty-five") == [NUM, "of", NUM, "is", NUM]
    assert normalize("twice as many") == [NUM, "times", "as", "many"] == normalize("2 times as many")
    assert normalize("Emily's") == ["emilys"]
    assert normalize("Emily ran", mask_names=True)[0] == "<name>" and normalize("Emily ran")[0] == "emily"


def test_ngrams():
    assert ngrams(["a", "b", "c"], 2) == {("a", "b"), ("b", "c")}
    assert ngrams(["a", "b"], 3) == set()


def test_containment_changed_numbers_is_one_and_unrelated_is_low():
    changed = EMILY.replace("6", "12").replace("30", "25").replace("10", "7").replace("90", "300")
    index = OverlapIndex([EMILY, "Tom has 3 apples and buys 5 more. How many apples does he have now?"])
    assert index.score(changed) == (1.0, 0)
    score, _ = index.score("A train leaves the station at 60 miles per hour. When does it reach the city 240 miles "
                           "away if it stops for 2 hours?")
    assert score < 0.2
    assert index.score("short") == (0.0, None)
    with pytest.raises(ValueError):
        OverlapIndex([], n=0)


def test_find_overlaps_split_clean_report_on_toy_data():
    train = [Problem("tr-0", "t", EMILY, 40)]
    evaluation = [Problem("ev-0", "e", EMILY.replace("6", "8"), 1),
                  Problem("ev-1", "e", "Sam reads 4 books every week of the year. How many books per year?", 208)]
    rows = find_overlaps(train, evaluation)
    assert [(r["id"], r["train_id"], r["contaminated"]) for r in rows] == [("ev-0", "tr-0", True),
                                                                            ("ev-1", None, False)]
    clean, overlapping = split_clean(evaluation, rows)
    assert clean == [evaluation[1]] and overlapping == [evaluation[0]]
    assert report("t", "e", rows) == {"train_set": "t", "eval_set": "e", "n_eval": 2, "n_overlap": 1,
                                      "threshold": DEFAULT_THRESHOLD, "ngram": DEFAULT_N}
    with pytest.raises(ValueError):
        split_clean(evaluation, rows[:1])


@pytest.fixture(scope="module")
def real(shared_data):
    sym = list(load_gsm_symbolic(2000, seed=0, split="train")) + list(load_gsm_symbolic(2000, seed=0, split="test"))
    return sym, load("gsm8k_test", shared_data), load("svamp", shared_data)


def test_template_0_matches_the_emily_shrimp_item(real):
    sym, gsm8k_test, _ = real
    template0 = [p for p in sym if p.id.startswith("gsm_symbolic-t0-")]
    assert template0
    index = OverlapIndex(p.question for p in gsm8k_test)
    score, best = index.score(template0[0].question)
    assert gsm8k_test[best].question == EMILY and score > 0.3
    rows = {r["id"]: r for r in find_overlaps(sym, gsm8k_test)}
    emily = next(p.id for p in gsm8k_test if p.question == EMILY)
    assert rows[emily]["contaminated"] and rows[emily]["train_id"].startswith("gsm_symbolic-t0-")


def test_gsm_symbolic_sample_flags_plausible_counts(real):
    sym, gsm8k_test, svamp = real
    start = time.perf_counter()
    rows = find_overlaps(sym, gsm8k_test)
    svamp_rows = find_overlaps(sym, svamp)
    assert time.perf_counter() - start < 10
    flagged = sum(r["contaminated"] for r in rows)
    assert 55 <= flagged <= 100  # measured 78 of the 85 templates' source items (n=4, threshold 0.35)
    assert sum(r["contaminated"] for r in svamp_rows) <= 5  # measured 0 (max score 0.20)
    clean, overlapping = split_clean(gsm8k_test, rows)
    assert len(clean) + len(overlapping) == len(gsm8k_test) and len(overlapping) == flagged
    assert {p.id for p in clean}.isdisjoint(p.id for p in overlapping)
    assert {p.id for p in clean} | {p.id for p in overlapping} == {p.id for p in gsm8k_test}


def test_held_out_templates_are_found_in_gsm8k_test_not_in_the_training_sets(real, shared_data):
    """gsm_symbolic_template is decontaminated like a benchmark: the GSM8K test questions its templates were written
    from flag it, the training questions of the tiers (GSM8K train, the benchmarks' training folds) do not."""
    sym, gsm8k_test, svamp = real
    held_out = sym[2000:]  # the test split: the 17 held-out templates
    flagged = [p for p, row in zip(held_out, find_overlaps(gsm8k_test, held_out)) if row["contaminated"]]
    assert len({p.id.split("-")[1] for p in flagged}) >= 14  # measured 16 of the 17 templates
    train = [*load("gsm8k_train", shared_data), *svamp, *load("asdiv", shared_data), *load("multiarith", shared_data)]
    assert not any(row["contaminated"] for row in find_overlaps(train, held_out))  # measured: highest score 0.19
