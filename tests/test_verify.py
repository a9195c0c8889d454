from fractions import Fraction

import eotd
from eotd import verify, verify_many


def test_public_contract_is_importable_from_the_package():
    assert eotd.verify is verify and eotd.verify_many is verify_many
    assert {"correct", "answer", "reason"} <= set(eotd.Verdict.__dataclass_fields__)


def test_cot_right_and_wrong():
    assert verify("cot", "3 + 5 = 8 apples. The answer is 8.", 8).correct
    wrong = verify("cot", "The answer is 9.", 8)
    assert (wrong.correct, wrong.answer, wrong.reason) == (False, 9, "wrong_answer")
    assert verify("cot", "I cannot tell.", 8).reason == "no_answer"


def test_gold_may_be_text():
    assert verify("cot", "The answer is 1600.", "1,600").correct


def test_pot_and_eot_right():
    assert verify("pot", "eggs = 16 - 3 - 4\nans = eggs * 2", 18).correct
    eot = "% Angela delivers x meals:\nmeals = x\npackages = 8 * meals\npackages + meals = 27\nans = meals"
    verdict = verify("eot", eot, 3)
    assert verdict.correct and verdict.answer == 3


def test_verify_many_keeps_order_across_kinds():
    items = [
        ("pot", f"ans = {i} * 2", 2 * i) if i % 3 == 0 else
        ("eot", f"a = x\n2 * a = {2 * i}\nans = a", i) if i % 3 == 1 else
        ("cot", f"The answer is {i}.", i)
        for i in range(30)
    ]
    verdicts = verify_many(items)
    assert [v.answer for v in verdicts] == [2 * i if i % 3 == 0 else i for i in range(30)]
    assert all(v.correct for v in verdicts)


def test_bad_inputs_give_verdicts():
    verdicts = verify_many([("lisp", "(+ 1 2)", 3), ("pot", "", 1), ("eot", None, 1)])
    assert [v.reason for v in verdicts] == ["unknown_thought", "no_answer", "no_answer"]


def test_float_answer_within_tolerance():
    assert verify("pot", "ans = 10 / 3", Fraction(10, 3)).correct
    assert not verify("pot", "ans = 3.33", Fraction(10, 3)).correct


def test_summary_counts_verified_eot_that_inverts_apart_from_forward_calculations():
    forward = "bird = x\nstep_1 = 3 * 4\nbird = step_1 + 26\nans = bird"
    relational = "meals = x\npackages = 8 * meals\npackages + meals = 27\nans = meals"
    wrong_relational = "meals = x\npackages = 8 * meals\npackages + meals = 28\nans = meals"
    rows = [("eot", forward, 38), ("eot", relational, 3), ("eot", wrong_relational, 3), ("pot", "ans = 38", 38)]
    from eotd.verify import summarize

    summary = summarize([{"thought": t, "rationale": r, "correct": v.correct, "reason": v.reason}
                         for (t, r, _), v in zip(rows, verify_many(rows))])
    assert (summary["eot"]["total"], summary["eot"]["verified"], summary["eot"]["inverts"]) == (3, 2, 1)
    assert summary["pot"]["inverts"] == 0 and summary["pot"]["verified"] == 1
