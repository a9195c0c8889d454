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


def test_training_folds_hold_out_every_evaluated_item_and_its_near_duplicates(shared_data):
    from eotd import decontaminate

    p = params.validate({"name": "unit", "data_dir": str(shared_data), "eval_limit": 40,
                         "eval_sets": ["svamp", "multiarith"], "train_extra": {"svamp": None, "multiarith": 30}},
                        "test")
    svamp, multiarith = evalsets.training_fold(p, "svamp", None), evalsets.training_fold(p, "multiarith", 30)
    assert len(multiarith) == 30 and len(svamp) > 100 and all(pr.solution for pr in svamp + multiarith)
    assert evalsets.training_fold(p, "multiarith", 30) == multiarith  # seeded
    sets = evalsets.load(p, svamp + multiarith)
    evaluated = sets.sets["svamp"] + sets.sets["multiarith"]
    assert len(sets.sets["svamp"]) == len(sets.sets["multiarith"]) == 40
    assert not {pr.id for pr in evaluated} & {pr.id for pr in svamp + multiarith}
    assert not any(r["contaminated"] for r in decontaminate.find_overlaps(svamp + multiarith, evaluated))
    assert not any(name.endswith("_overlap") for name in sets.sets)  # so nothing had to be removed
    assert evalsets.domains(p) == {"svamp": "in-domain", "multiarith": "in-domain"}
    plain = params.validate({"name": "unit", "train_dataset": "gsm8k_train",
                             "eval_sets": ["gsm8k_test", "svamp", "gsm_symbolic_template", "gsm_hard"]}, "test")
    assert evalsets.domains(plain) == {"gsm8k_test": "in-domain", "svamp": "out-of-domain",
                                       "gsm_symbolic_template": "derived from gsm8k_test",
                                       "gsm_hard": "derived from gsm8k_test"}


def test_held_out_templates_are_decontaminated_and_topped_up_from_their_stream():
    """GSM-Symbolic's templates were written from GSM8K test questions: an evaluated item found in the training
    questions goes to gsm_symbolic_template_overlap like any benchmark's."""
    p = params.validate({"name": "unit", "eval_limit": 20, "eval_sets": ["gsm_symbolic_template"]}, "test")
    stream = list(data.load_gsm_symbolic(60, p.seed, "test", "template", p.gsm_symbolic_test_fraction))
    assert evalsets.load(p, []).sets == {"gsm_symbolic_template": stream[:20]}
    train = [stream[50]]  # an instance of a held-out template that also has instances among the first 20
    template = data.gsm_symbolic_template(train[0])
    sets = evalsets.load(p, train)
    overlap, clean = sets.sets["gsm_symbolic_template_overlap"], sets.sets["gsm_symbolic_template"]
    assert overlap == [pr for pr in stream[:20] if data.gsm_symbolic_template(pr) == template]
    assert len(clean) == 20 and all(data.gsm_symbolic_template(pr) != template for pr in clean)
    assert clean[:20 - len(overlap)] == [pr for pr in stream[:20] if pr not in overlap]
    assert sets.contamination == [{"train_set": "gsm_symbolic", "eval_set": "gsm_symbolic_template", "n_eval": 20,
                                   "n_overlap": len(overlap), "threshold": 0.35, "ngram": 4}]


def test_the_contamination_table_names_every_training_source():
    p = params.validate({"name": "unit", "train_dataset": "gsm8k_train", "train_extra": {"svamp": 8, "asdiv": None}},
                        "test")
    assert evalsets.train_set_names(p) == "gsm8k_train + svamp (training fold) + asdiv (training fold)"
