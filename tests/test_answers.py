from fractions import Fraction

import pytest

from eotd.answers import extract_answer, numbers_equal, parse_number


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1,600", 1600),
        ("$5", 5),
        ("5.00", 5),
        ("-3", -3),
        ("3/4", Fraction(3, 4)),
        ("50%", 50),
        ("9 (apples)", 9),
        ("14  (seats)", 14),
        ("2.5", Fraction(5, 2)),
        ("0.1", Fraction(1, 10)),
        ("$1,234.50", Fraction(246900, 200)),
        (" 42. ", 42),
    ],
)
def test_parse_number_reads_grader_formats(text, expected):
    value = parse_number(text)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize("text", ["Yes", "3:4", "36 (years old); 12 (years old)", "", "5/0", "one"])
def test_parse_number_rejects_non_numbers(text):
    assert parse_number(text) is None


@pytest.mark.parametrize(
    "text, value, rule",
    [
        ("He has 3 + 5 = 8 apples. The answer is 8.", 8, "answer_is"),
        ("So the total is $1,600.\nThe final answer is: $1,600", 1600, "answer_is"),
        ("Janet sells 16 - 3 - 4 = 9 eggs.\n#### 18", 18, "hash"),
        ("She pays 12 dollars, then 4 more, so 16", 16, "last_number"),
        ("The answer is 3/4.", Fraction(3, 4), "answer_is"),
        ("The answer is -7", -7, "answer_is"),
    ],
)
def test_extract_answer_records_the_rule(text, value, rule):
    extraction = extract_answer(text)
    assert extraction.value == value
    assert extraction.rule == rule


def test_extract_answer_prefers_the_last_answer_statement():
    assert extract_answer("The answer is 4. Wait, no: the answer is 5.").value == 5


def test_extract_answer_without_numbers():
    extraction = extract_answer("I do not know.")
    assert extraction.value is None and extraction.rule is None


def test_extract_answer_never_raises_on_odd_numbers():
    assert extract_answer("ratio 5/0 then 7").value == 7


def test_exact_values_compare_exactly():
    assert numbers_equal(Fraction(1, 3), Fraction(2, 6))
    assert not numbers_equal(Fraction(1, 3), Fraction(333333, 1000000))
    assert numbers_equal(18, Fraction(36, 2))


def test_floats_compare_with_relative_tolerance():
    assert numbers_equal(0.1 + 0.2, Fraction(3, 10))
    assert numbers_equal(10 / 3, Fraction(10, 3))
    assert numbers_equal(1_000_000.05, 1_000_000)
    assert not numbers_equal(1.01, 1)
    assert not numbers_equal(float("nan"), 1)
    assert not numbers_equal(None, 1)


def test_extract_answer_skips_an_unreadable_final_statement():
    assert extract_answer("The answer is 5/0").value is None
    assert extract_answer("It is 12. The answer is 5/0").value == 12
