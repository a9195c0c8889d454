"""The annotation teacher: gold solutions -> CoT / PoT / EoT rationales (not an LLM)."""
import random
import re
from fractions import Fraction

import pytest

from eotd import verify, verify_many
from eotd.teachers.annotation import (SAMPLE_ERROR, AnnotationTeacher, ConversionError, checked_steps, convert,
                                      equation_solution)
from eotd.teachers.base import Request

JANET_Q = ("Janet’s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her "
           "friends every day with four. She sells the remainder at the farmers' market daily for $2 per fresh duck "
           "egg. How much in dollars does she make every day at the farmers' market?")
JANET = ("Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\n"
         "She makes 9 * 2 = $<<9*2=18>>18 every day at the farmer’s market.\n#### 18")
DOLLARS = ("The rent is $1,200 * 2 = $<<1200*2=2400>>2,400 per month.\n"
           "Over a year she pays $2,400 * 12 = $<<2400*12=28800>>28,800 in rent.\n#### 28,800")
PERCENT = ("The brokerage fee is $400,000 x 8/100 = $32,000.\n"
           "The literature questions are 100% - 20% = 80% of the quiz.\n"
           "The total price is $400,000 + $32,000 = $432,000.\n#### 432000")
UNITS = ("She can fit 220.0 meters / 2.0 meters per plant = 110 plants in the garden.\n"
         "She already has 35 plants, so she buys 110 - 35 = 75 plants.\n"
         "They cost 75 plants × $3 per plant = $225.\n#### 225")


def all_three(solution, question=None):
    return {t: convert(solution, t, question) for t in ("cot", "pot", "eot")}


def assert_verified(texts, gold):
    for kind, text in texts.items():
        verdict = verify(kind, text, gold)
        assert verdict.correct, (kind, verdict, text)


def test_janet_exact_shapes():
    out = all_three(JANET, JANET_Q)
    assert out["cot"] == ("Janet sells 16 - 3 - 4 = 9 duck eggs a day.\n"
                          "She makes 9 * 2 = $18 every day at the farmer’s market.\nThe answer is 18.")
    assert out["pot"] == ("daily_duck_eggs = 16 - 3 - 4\n"
                          "daily_earnings = daily_duck_eggs * 2\n"
                          "ans = daily_earnings")
    assert out["eot"] == ("daily_duck_eggs = 16 - 3 - 4\n"
                          "% Assume the daily earnings is x:\n"
                          "daily_earnings = x\n"
                          "daily_earnings = daily_duck_eggs * 2\n"
                          "% How much in dollars does she make every day at the farmers' market? "
                          "The answer is daily_earnings:\n"
                          "ans = daily_earnings")
    assert_verified(out, 18)


def test_dollars_and_commas():
    out = all_three(DOLLARS)
    pot_lines = out["pot"].splitlines()
    assert pot_lines[0] == "monthly_rent = 1200 * 2" or pot_lines[0].endswith(" = 1200 * 2")
    first = pot_lines[0].split(" = ")[0]
    assert pot_lines[1].split(" = ")[1] == f"{first} * 12"  # 2,400 reused by name
    assert out["cot"].endswith("The answer is 28,800.")
    assert "$" not in "".join(line for line in out["eot"].splitlines() if not line.startswith("%"))
    assert_verified(out, 28800)


def test_percent_and_text_calculations():
    out = all_three(PERCENT)
    code = [line for line in out["pot"].splitlines() if not line.startswith("#")]
    assert code[0].endswith(" = 400000 * 8 / 100")
    assert code[1].endswith(" = 100 - 20")  # every number is a percentage: plain arithmetic on them
    name0 = code[0].split(" = ")[0]
    assert code[2].endswith(f" = 400000 + {name0}")
    assert_verified(out, 432000)


def test_gsm_symbolic_units():
    out = all_three(UNITS, "How much does she spend on plants?")
    code = [line for line in out["pot"].splitlines() if not line.startswith("#")]
    assert code[0] == "plants = 220 / 2"
    assert code[1] == "plants_2 = plants - 35"
    assert code[2].endswith(" = plants_2 * 3")
    assert code[3] == f"ans = {code[2].split(' = ')[0]}"
    eot = out["eot"].splitlines()
    assert eot[-2] == f"% How much does she spend on plants? The answer is {code[2].split(' = ')[0]}:"
    assert_verified(out, 225)


def test_commented_style_is_version_one_layout():
    plain, commented = convert(JANET, "pot", JANET_Q), convert(JANET, "pot", JANET_Q, "commented")
    assert commented.splitlines()[0] == "# Janet sells 16 - 3 - 4 = 9 duck eggs a day."
    assert [line for line in commented.splitlines() if not line.startswith("#")] == plain.splitlines()
    eot = convert(JANET, "eot", JANET_Q, "commented")
    assert "% She makes 9 * 2 = $18 every day at the farmer’s market." in eot.splitlines()
    assert verify("eot", eot, 18).correct and verify("pot", commented, 18).correct
    with pytest.raises(ConversionError, match="style"):
        convert(JANET, "pot", JANET_Q, "fancy")


def test_executor_rationales_never_carry_computed_numbers_in_comments():
    from eotd.data import load_gsm_symbolic
    from eotd.teachers.annotation import question_numbers

    for p in load_gsm_symbolic(200, seed=1):
        given = question_numbers(p.question)
        for thought in ("pot", "eot"):
            try:
                text = convert(p.solution, thought, p.question)
            except ConversionError:
                continue
            assert not any(line.startswith("#") for line in text.splitlines())
            comments = " ".join(line.split(" The answer is ")[0] for line in text.splitlines() if line.startswith("%"))
            assert question_numbers(comments) <= given, (p.question, text)


CARPENTER_Q = ("A carpenter works for 2 weeks every month and for 6 days every week. If he gets paid £195 every day, "
               "how much does he earn if he works for a year?")
CARPENTER = ("He works 6 days/week * 2 weeks/month = 12 days/month\n"
             "He earns £195/day * 12 days/month = £2340/month\n"
             "A year is 12 months so he earns £2340/month * 12 months/year = £28080\n#### 28080")
PEBBLES_Q = "Robert has 72 pebbles. He dropped 36 of them and found 17. How many pebbles does he have?"
PEBBLES = "He was left with 72*0.5=36 pebbles.\nHe found 17, so he has 36+17=53 pebbles.\n#### 53"


def test_coincident_values_are_not_reused():
    pot = convert(CARPENTER, "pot", CARPENTER_Q).splitlines()
    days = pot[0].split(" = ")[0]
    assert pot[1].endswith(f" = 195 * {days}")  # 12 days/month is the earlier result
    assert pot[2].endswith(" * 12") and days not in pot[2]  # 12 months/year is a constant that happens to equal it
    pebbles = convert(PEBBLES, "pot", PEBBLES_Q).splitlines()
    assert pebbles[1].endswith(" = 36 + 17")  # 36 is written in the question: the question's number
    assert verify("pot", "\n".join(pot), 28080).correct and verify("pot", "\n".join(pebbles), 53).correct


def test_programs_never_name_a_number_of_the_question():
    """Over real GSM-Symbolic items: no number written in the question is replaced by an earlier result's variable."""
    from eotd.data import load_gsm_symbolic
    from eotd.teachers.annotation import question_numbers

    checked = 0
    for p in load_gsm_symbolic(300, seed=2):
        try:
            steps = checked_steps(p.solution)
        except ConversionError:
            continue
        given = question_numbers(p.question)
        names = {s.name: s.result for s in steps}
        code = convert(p.solution, "pot", p.question).splitlines()[:-1]
        for line in code:
            target, expr = line.split(" = ", 1)
            for name in re.findall(r"[a-z_][a-z0-9_]*", expr):
                if name in names:
                    assert names[name] not in given, (p.question, line)
        checked += 1
    assert checked > 250


def test_rounded_down_and_float_repr():
    solution = ("David has 17*0.5=8 tubes of red paint\nDavid has 6 x 0.6666666666666666 = 4.0 tubes of blue paint\n"
                "David has a total of 8+4=12 tubes of paint\n#### 12")
    out = all_three(solution)
    assert "int(17 * 0.5)" in out["pot"] and "floor(17 * 0.5)" in out["eot"]
    assert "6 * (2 / 3)" in out["pot"]
    assert_verified(out, 12)


@pytest.mark.parametrize("solution, reason", [
    ("Janet sells nine eggs.\n#### 9", "no_annotations"),
    ("She has 2 * 3 = <<2*3=7>>7 eggs.\n#### 7", "annotation_mismatch"),
    ("She has 2 * 3 = <<2*3=6>>6 eggs.\nShe sells all of them for 12 dollars.\n#### 12", "last_step_not_answer"),
    ("She has <<2*=6>>6 eggs.\n#### 6", "unparseable_annotation"),
])
def test_failure_reasons(solution, reason):
    with pytest.raises(ConversionError) as info:
        checked_steps(solution)
    assert info.value.reason == reason
    assert convert(solution, "cot").endswith(f"The answer is {solution.rsplit('#### ', 1)[1]}.")


def test_names_are_valid_unique_identifiers():
    solution = ("For 3 + 2 = <<3+2=5>>5 if.\nAnd 5 + 1 = <<5+1=6>>6 if.\nThen 6 * 2 = <<6*2=12>>12 class.\n#### 12")
    names = [s.name for s in checked_steps(solution)]
    assert len(set(names)) == 3 and all(n.isidentifier() for n in names)
    assert not {"if", "class", "ans", "x"} & set(names)


# ---- benchmark equations (SVAMP, ASDiv, MultiArith) as annotated solutions ----

@pytest.mark.parametrize("equation, answer, question, lines", [
    ("( 76.0 - 25.0 )", 51, "How much do you have to pay?", ["76 - 25 = <<76-25=51>>51"]),
    ("X=((32.0+42.0)-35.0)", 39, "how many pieces do they have left?",
     ["32 + 42 = <<32+42=74>>74", "74 - 35 = <<74-35=39>>39 pieces"]),
    ("7+2=9", 9, "How many apples are in the basket?", ["7 + 2 = <<7+2=9>>9 apples"]),
    ("( 10.0 / 4.0 )", Fraction(5, 2), "", ["10 / 4 = <<10/4=2.5>>2.5"]),
    ("-(3 - 1) + 2 * 4", 6, "", ["3 - 1 = <<3-1=2>>2", "2 * 4 = <<2*4=8>>8", "-2 + 8 = <<-2+8=6>>6"]),
])
def test_equations_become_annotated_solutions(equation, answer, question, lines):
    assert equation_solution(equation, answer, question).splitlines() == \
        [*lines, f"#### {lines[-1].split('>>')[1].split()[0]}"]


@pytest.mark.parametrize("equation, answer", [("x:Bryan's age; (x/3)+x+(x+5)=40", 9), ("( 4.0 - 2.0 )", 5),
                                               ("__import__('os')", 0), ("3:4", 1), ("", 0), ("12", 12),
                                               ("1 / 0", 0), ("+3 - 1", 2), ("2 ** 3", 8), ("7 // 7", 1),
                                               ("1,000 + 1", 1001), ("2x+4x+3x=27", 3)])
def test_equations_that_are_not_plain_arithmetic_or_disagree_give_none(equation, answer):
    assert equation_solution(equation, answer) is None


def test_teacher_protocol():
    teacher = AnnotationTeacher()
    assert (teacher.backend, teacher.model, teacher.is_llm, teacher.settings()) == \
        ("annotation", "gold-annotations-v3", False, {})
    assert AnnotationTeacher("commented").model == "gold-annotations-v3-commented"
    assert AnnotationTeacher(eot_form="forward").model == "gold-annotations-v3-forward-eot"
    assert AnnotationTeacher(eot_form="forward").prompt_version("eot") != teacher.prompt_version("eot")
    assert AnnotationTeacher("commented").prompt_version("pot") != teacher.prompt_version("pot")
    assert teacher.prompt_version("eot") == AnnotationTeacher().prompt_version("eot") != teacher.prompt_version("pot")
    requests = [Request("q1", JANET_Q, t, 0, JANET) for t in ("cot", "pot", "eot")]
    requests += [Request("q1", JANET_Q, "pot", 1, JANET), Request("q2", "?", "pot", 0, None),
                 Request("q3", "?", "eot", 0, "no numbers\n#### 4")]
    done = list(teacher.complete(requests))
    assert [r for r, _ in done] == requests
    assert all(c.text for _, c in done[:3])
    assert done[3][1] == type(done[3][1])(None, error=SAMPLE_ERROR)
    assert done[4][1].text is None and done[4][1].error == "no_gold_solution"
    assert done[5][1].text is None and done[5][1].error.startswith("no_annotations")
    assert teacher.usage.requests == 6 and teacher.usage.cost == 0 and teacher.usage.input_tokens == 0


def _rates(problems):
    teacher = AnnotationTeacher()
    requests = [Request(p.id, p.question, t, 0, p.solution) for p in problems for t in ("cot", "pot", "eot")]
    done = {(r.question_id, r.thought): c for r, c in teacher.complete(requests)}
    gold = {p.id: p.answer for p in problems}
    keys = [k for k, c in done.items() if c.text is not None]
    verdicts = verify_many([(k[1], done[k].text, gold[k[0]]) for k in keys])
    ok = {k for k, v in zip(keys, verdicts) if v.correct}
    converted = sum(all(done[(p.id, t)].text for t in ("cot", "pot", "eot")) for p in problems) / len(problems)
    all3 = sum(all((p.id, t) in ok for t in ("cot", "pot", "eot")) for p in problems) / len(problems)
    return converted, all3


def test_most_of_a_gsm8k_train_sample_converts_and_verifies(shared_data):
    """60 questions; the whole split's rates (97 % converted, all three verified for most) are a benchmark:
    tests/benchmarks/bench_annotation.py."""
    from eotd.data import load

    converted, all3 = _rates(random.Random(0).sample(list(load("gsm8k_train", shared_data)), 60))
    assert converted >= 0.85
    assert all3 >= 0.8
