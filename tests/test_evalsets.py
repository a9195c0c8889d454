"""Evaluation sets: per-set sizes, decontamination that keeps the headline set at its size, held-out GSM-Symbolic."""
from eotd import data, evalsets, params


def test_sizes_per_set_and_clean_top_up(shared_data):
    train = list(data.load_gsm_symbolic(300, 0, "train", "template", 0.2))
    p = params.validate({"name": "unit", "data_dir": str(shared_data), "eval_limit": 60,
                         "eval_limits": {"gsm_symbolic_instance": 80},
                         "eval_sets": ["gsm_symbolic_instance", "gsm8k_test", "svamp"]}, "test")
    sets = evalsets.load(p, train)
    assert not sets.unavailable
    assert len(sets.sets["gsm_symbolic_instance"]) == 80 and len(sets.sets["svamp"]) == 60
    # GSM-Symbolic's templates were written from GSM8K test questions: some of the sample overlap the training
    # questions; they are reported apart and the headline set is topped up with clean problems to its size
    overlap = sets.sets.get("gsm8k_test_overlap", [])
    assert len(sets.sets["gsm8k_test"]) == 60
    assert not {pr.id for pr in overlap} & {pr.id for pr in sets.sets["gsm8k_test"]}
    seen = {pr.question for pr in train}
    assert not seen & {pr.question for pr in sets.sets["gsm_symbolic_instance"]}
    again = evalsets.load(p, train)
    assert [pr.id for pr in again.sets["gsm8k_test"]] == [pr.id for pr in sets.sets["gsm8k_test"]]  # seeded


def test_limit_falls_back_to_eval_limit():
    p = params.validate({"name": "unit", "eval_limit": 7, "eval_limits": {"svamp": 3}}, "test")
    assert evalsets.limit(p, "svamp") == 3 and evalsets.limit(p, "asdiv") == 7
