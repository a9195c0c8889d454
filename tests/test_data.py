import json
from fractions import Fraction

import pytest

from eotd import data
from eotd.answers import parse_number
from eotd.data import DataError, Problem, ProblemSet, load, load_gsm_symbolic


@pytest.fixture(scope="module")
def loaded(shared_data):
    return {name: load(name, shared_data) for name in data.DATASETS}


def test_record_counts(loaded):
    counts = {name: len(ps) for name, ps in loaded.items()}
    assert counts == {"gsm8k_train": 7473, "gsm8k_test": 1319, "svamp": 1000, "asdiv": counts["asdiv"],
                      "multiarith": 600, "gsm_hard": 1319}
    for name, ps in loaded.items():
        assert isinstance(ps, ProblemSet) and ps.name == name and ps.source.endswith(data._LOCAL[name])
        assert len({p.id for p in ps}) == len(ps)
        exact = (int, Fraction, float) if name == "gsm_hard" else (int, Fraction)
        assert all(p.dataset == name and p.question and type(p.answer) in exact for p in ps)


def test_asdiv_skips_are_counted_with_reasons(loaded):
    asdiv = loaded["asdiv"]
    assert len(asdiv) + len(asdiv.skipped) == 2305
    assert len(asdiv.skipped) == 212
    assert all(s.reason and s.raw_answer for s in asdiv.skipped)
    raw = {s.raw_answer for s in asdiv.skipped}
    assert {"Yes", "3:4", "36 (years old); 12 (years old)"} <= raw
    by_id = {p.id: p for p in asdiv}
    assert by_id["nluds-0001"].answer == 9
    assert by_id["nluds-0001"].question == ("Seven red apples and two green apples are in the basket. "
                                            "How many apples are in the basket?")
    assert by_id["nluds-1008"].answer == 14  # "14  (seats)", double space
    assert by_id["nluds-1312"].answer == Fraction(5, 2)  # "5/2" is one number: kept, exact
    assert by_id["nluds-1331"].answer == Fraction(-1, 3)  # "-(1/3)"


def test_specific_values(loaded):
    test0 = loaded["gsm8k_test"][0]
    assert (test0.id, test0.answer) == ("gsm8k_test-0", 18) and test0.solution.endswith("#### 18")
    assert test0.question.startswith("Janet’s ducks lay 16 eggs per day.")
    assert "#### 1,600" in loaded["gsm8k_test"][505].solution and loaded["gsm8k_test"][505].answer == 1600
    chal1 = next(p for p in loaded["svamp"] if p.id == "chal-1")
    assert chal1.answer == 51 and type(chal1.answer) is int
    assert chal1.question == ("Each pack of dvds costs 76 dollars. If there is a discount of 25 dollars on each pack "
                              "How much do you have to pay to buy each pack?")
    ma0 = loaded["multiarith"][0]
    assert (ma0.id, ma0.answer) == ("multiarith-0", 39) and ma0.question.startswith("For Halloween")
    hard0 = loaded["gsm_hard"][0]
    assert hard0.answer == -9867630 and "def solution" in hard0.solution
    # non-integral targets are rounded floats from executed programs: kept as floats, compared with the tolerance
    assert any(type(p.answer) is float for p in loaded["gsm_hard"])


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="gsm8k_test"):
        load("gsm9k")


def test_env_var_selects_local_copy(shared_data, monkeypatch):
    monkeypatch.setenv("EOTD_DATA_DIR", str(shared_data))
    assert len(load("multiarith")) == 600


# ---- bad files ----

def _write(root, rel, text):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


GOOD_GSM = json.dumps({"question": "q?", "answer": "1 + 1 = 2\n#### 2"})


@pytest.mark.parametrize("line3, field", [
    ('{"question": "q?", "answer": ', None),  # malformed JSON
    (json.dumps({"question": "q?"}), "answer"),  # missing field
    (json.dumps({"question": "q?", "answer": "the answer is 2"}), "answer"),  # no ####
    (json.dumps({"question": 7, "answer": "#### 2"}), "question"),  # wrong type
    (json.dumps({"question": "q?", "answer": "#### two"}), "answer"),  # not a number
])
def test_bad_gsm8k_line(tmp_path, line3, field):
    _write(tmp_path, "gsm8k/test.jsonl", "\n".join([GOOD_GSM, GOOD_GSM, line3]) + "\n")
    with pytest.raises(DataError) as err:
        load("gsm8k_test", tmp_path)
    msg = str(err.value)
    assert "test.jsonl" in msg and "line 3" in msg
    assert field is None or f"'{field}'" in msg


def test_bad_svamp_answer_type(tmp_path):
    rec = {"ID": "chal-1", "Body": "b", "Question": "q", "Equation": "( 1.0 + 1.0 )", "Answer": 2.0, "Type": "x"}
    _write(tmp_path, "svamp/SVAMP.json", json.dumps([rec, {**rec, "ID": "chal-2", "Answer": "2"}]))
    with pytest.raises(DataError) as err:
        load("svamp", tmp_path)
    msg = str(err.value)
    assert "SVAMP.json" in msg and "record 1" in msg and "chal-2" in msg and "'Answer'" in msg


def test_bad_multiarith_missing_question(tmp_path):
    _write(tmp_path, "multiarith/MultiArith.json", json.dumps([{"iIndex": 0, "lSolutions": [3.0]}]))
    with pytest.raises(DataError, match=r"MultiArith\.json: record 0.*sQuestion.*missing"):
        load("multiarith", tmp_path)


def test_bad_gsm_hard_target(tmp_path):
    _write(tmp_path, "gsm_hard/gsmhardv2.jsonl", json.dumps({"input": "q", "code": "x", "target": None}) + "\n")
    with pytest.raises(DataError, match=r"gsmhardv2\.jsonl: line 1: field 'target'"):
        load("gsm_hard", tmp_path)


def test_bad_asdiv_xml(tmp_path):
    problem = '<Problem ID="nluds-{i}"><Body>b</Body>{q}<Answer>3 (cats)</Answer></Problem>'
    xml = "<Root><ProblemSet>{}</ProblemSet></Root>"
    good = problem.format(i="0001", q="<Question>q?</Question>")
    _write(tmp_path, "asdiv/ASDiv.xml", xml.format(good + problem.format(i="0002", q="")))
    with pytest.raises(DataError) as err:
        load("asdiv", tmp_path)
    msg = str(err.value)
    assert "ASDiv.xml" in msg and "record 1" in msg and "nluds-0002" in msg and "Question" in msg
    _write(tmp_path, "asdiv/ASDiv.xml", xml.format(good)[:-5])
    with pytest.raises(DataError, match=r"ASDiv\.xml: line 1: invalid XML"):
        load("asdiv", tmp_path)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="SVAMP.json"):
        load("svamp", tmp_path)


# ---- hub path, with datasets.load_dataset faked (the hub is offline here) ----

def test_hub_rows_use_the_same_converters(monkeypatch):
    import datasets

    calls = []
    rows = {("ChilleD/MultiArith", "train"): [{"question": " Q1 ", "final_ans": "39"}],
            ("ChilleD/MultiArith", "test"): [{"question": "Q2", "final_ans": "2.5"}]}

    def fake(hub_id, config=None, split=None):
        calls.append((hub_id, config, split))
        return rows[(hub_id, split)]

    monkeypatch.delenv("EOTD_DATA_DIR", raising=False)
    monkeypatch.setattr(datasets, "load_dataset", fake)
    ps = load("multiarith")
    assert calls == [("ChilleD/MultiArith", None, "train"), ("ChilleD/MultiArith", None, "test")]
    assert [(p.id, p.question, p.answer) for p in ps] == [("multiarith-0", "Q1", 39),
                                                         ("multiarith-1", "Q2", Fraction(5, 2))]
    assert "ChilleD/MultiArith" in ps.source


def test_hub_failure_says_to_set_data_dir(monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.delenv("EOTD_DATA_DIR", raising=False)
    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(RuntimeError, match="EOTD_DATA_DIR") as err:
        load("gsm8k_test")
    assert isinstance(err.value.__cause__, ConnectionError)


# ---- GSM-Symbolic ----

@pytest.fixture(scope="module")
def symbolic():
    return {(split, by): load_gsm_symbolic(300, seed=7, split=split, by=by)
            for split in ("train", "test") for by in ("template", "instance")}


def _template(p: Problem) -> int:
    return int(p.id.split("-")[1].removeprefix("t"))


def test_gsm_symbolic_template_split_is_disjoint(symbolic):
    train, test = symbolic["train", "template"], symbolic["test", "template"]
    assert len(train) == len(test) == 300
    train_t, test_t = {_template(p) for p in train}, {_template(p) for p in test}
    assert not train_t & test_t
    all_train, all_test = data.gsm_symbolic_templates(7, 0.2)
    assert train_t <= set(all_train) and test_t <= set(all_test)
    assert len(all_train) + len(all_test) == 85 and len(all_test) == 17


def test_gsm_symbolic_instance_split_shares_no_question(symbolic):
    train, test = symbolic["train", "instance"], symbolic["test", "instance"]
    assert not {p.question for p in train} & {p.question for p in test}
    assert {_template(p) for p in test} & {_template(p) for p in train}  # same templates on both sides
    other = load_gsm_symbolic(300, seed=8, split="train", by="instance")  # even across seeds
    assert not {p.question for p in other} & {p.question for p in test}


def test_gsm_symbolic_is_deterministic_and_well_formed(symbolic):
    again = load_gsm_symbolic(300, seed=7, split="test", by="template")
    first = symbolic["test", "template"]
    assert [(p.id, p.question, p.answer) for p in again] == [(p.id, p.question, p.answer) for p in first]
    assert [p.id for p in load_gsm_symbolic(50, seed=7, split="test")] == [p.id for p in first[:50]]
    assert [p.question for p in load_gsm_symbolic(300, seed=8, split="test")] != [p.question for p in first]
    for ps in symbolic.values():
        assert len({p.id for p in ps}) == len({p.question for p in ps}) == len(ps)
        for p in ps:
            assert p.dataset == "gsm_symbolic" and type(p.answer) in (int, Fraction)
            assert not p.question.endswith("Do not include units.")
            assert parse_number(p.solution.rsplit("####", 1)[1]) == p.answer


def test_gsm_symbolic_float_answer_values_become_ints():
    ps = load_gsm_symbolic(2000, seed=1, split="train", by="instance")
    # answer_cot prints some answers as "36.0"; the gold value is still an int
    dotted = [p for p in ps if p.solution.rstrip().endswith(".0")]
    assert dotted and all(type(p.answer) is int for p in dotted)


def test_gsm_symbolic_rejects_bad_arguments():
    with pytest.raises(ValueError):
        load_gsm_symbolic(10, seed=0, split="validation")
    with pytest.raises(ValueError):
        load_gsm_symbolic(10, seed=0, by="problem")
    with pytest.raises(ValueError):
        load_gsm_symbolic(10, seed=0, test_fraction=1.0)


@pytest.mark.parametrize("name, rel, good, bad", [
    ("gsm8k_test", "gsm8k/test.jsonl", GOOD_GSM + "\n" + GOOD_GSM + "\n", b'{"question": "caf\xe9?", "answer": "#### 2"}\n'),
    ("svamp", "svamp/SVAMP.json", '[\n{"ID": "a",\n', b'"Body": "caf\xe9"}]\n'),
])
def test_non_utf8_bytes_name_the_file_and_the_line(tmp_path, name, rel, good, bad):
    path = _write(tmp_path, rel, good)
    path.write_bytes(path.read_bytes() + bad)
    with pytest.raises(DataError) as err:
        load(name, tmp_path)
    msg = str(err.value)
    assert rel.split("/")[1] in msg and "line 3" in msg and "0xe9 is not UTF-8" in msg


def test_non_utf8_rationales_file_is_a_record_error(tmp_path):
    from eotd.records import RecordError, read_jsonl

    path = tmp_path / "r.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": "\xff"}\n')
    with pytest.raises(RecordError, match=r"r\.jsonl: line 2: column 8: byte 0xff"):
        read_jsonl(path)


# ---- benchmark equations as worked solutions (eotd.teachers.annotation.equation_solution) ----

def test_benchmark_solutions_convert_and_verify(loaded):
    """Every benchmark solution the annotation teacher converts to CoT, PoT and forward EoT verifies against the gold
    answer (a sample of each), and nearly every relational EoT."""
    import random

    from eotd.teachers.annotation import convert
    from eotd.verify import verify_many

    items, relational = [], []
    for name in ("svamp", "multiarith", "asdiv"):
        with_solution = [p for p in loaded[name] if p.solution]
        assert len(with_solution) >= {"svamp": 990, "multiarith": 600, "asdiv": 1500}[name]
        for problem in random.Random(0).sample(with_solution, 40):
            items += [(t, convert(problem.solution, t, problem.question, eot_form="forward"), problem.answer)
                      for t in ("pot", "eot", "cot")]
            relational += [("eot", convert(problem.solution, "eot", problem.question), problem.answer)]
    verdicts = verify_many(items)
    assert all(v.correct for v in verdicts), [(i, v) for i, v in zip(items, verdicts) if not v.correct][:3]
    # relational EoT states the text's reading, which can be wrong: those solve to another number and are rejected
    assert sum(v.correct for v in verify_many(relational)) >= 0.9 * len(relational)
