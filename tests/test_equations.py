"""solve_eot on a corpus of tricky EoT systems: real sympy, plain asserts, no timing."""
from __future__ import annotations

from fractions import Fraction

import pytest

from eotd.equations import REASONS, EotResult, inverts, solve_eot

ANGELA = """System of linear equations: (Do not simplify)

% Assume Angela delivers x meals:
meals = x
% She needs to deliver 8 times as many packages as meals:
packages = 8 * meals
% She needs to deliver 27 meals and packages combined:
packages + meals = 27
% How many meals does she deliver? The answer is meals:
ans = meals
"""

DALLAS = """% Assume Dallas is x years old now and Darcy is y years old now:
dallas = x
darcy = y
% A year ago Dallas was 3 times the age of his son Darcy:
dallas - 1 = 3 * (darcy - 1)
% Darcy is twice as old as Dexter who is 8 right now:
darcy = 2 * 8
ans = dallas
"""

ROBE = """% Assume the robe takes x bolts of white fiber:
blue_fiber = 2
white_fiber = x
total_fiber = blue_fiber + white_fiber / 2
ans = total_fiber
"""

OK_CASES = {
    "xot_angela": (ANGELA, 3),
    "xot_dallas": (DALLAS, 46),
    "implicit_paren": ("a = 2(x+1)\nx = 3\nans = a", 8),
    "implicit_number_name": ("n = 3x\nx = 4\nans = n", 12),
    "implicit_close_open": ("a = (1+1)(2+3)\nans = a", 10),
    "implicit_close_name": ("b = 5\na = (1+1)b\nans = a", 10),
    "implicit_name_paren": ("rate = 3\ntotal = rate(2 + 2)\nans = total", 12),
    "sympy_letters": ("E = 2\nI = 3\nN = E * I\nS = N + 1\nQ = S - 2\nans = Q", 5),
    "sympy_names": ("beta = 4\nlambda_ = beta * 2\ngamma = lambda_ + 1\npi = gamma\nans = pi", 9),
    "ans_not_split": ("ans = answer_total + 1\nanswer_total = 2", 3),
    "digits_in_names": ("day1 = 5\nday2 = 2day1\nans = day1 + day2", 15),
    "exact_decimals": ("a = 0.1 + 0.2\nans = a", Fraction(3, 10)),
    "half_of_442": ("ans = 0.5 * 442 + 7", 228),
    "percent": ("price = 80\ndiscount = 25% * price\nans = price - discount", 60),
    "percent_of_group": ("a = (10 + 10)%\nans = a * 200", 40),
    "dollars_and_thousands": ("salary = $1,200\nbonus = $2,500.50\nans = salary + bonus", Fraction(7401, 2)),
    "scientific_notation": ("a = 1e5\nb = 2.5e-1\nans = a * b", 25000),
    "power_caret": ("side = 3\nans = side^2 + side**2", 18),
    "unicode_ops": ("a = 6 × 7\nb = a ÷ 4\nans = b − 0.5", 10),
    "chain_of_five": ("a = b + 1\nb = c * 2\nc = d - 3\nd = e / 2\ne = 10\nans = a", 5),
    "multiple_equals_chain": ("a = b = 3\nans = a + b", 6),
    "two_unknowns_same_letter": ("a = x\nb = x\na + b = 12\nb = 2 * a\nans = b", 8),
    "letter_used_elsewhere": ("meals = x\npackages = 8 * x\npackages + meals = 27\nans = meals", 3),
    "linear_system_3x3": ("first = x\nsecond = y\nthird = z\nfirst + second + third = 30\n"
                          "second = first + 5\nthird - second = 5\nans = third", 15),
    "division_by_unknown": ("total = 120\nboxes = x\nper_box = total / boxes\nper_box = 8\nans = boxes", 15),
    "quadratic_keeps_positive": ("side = x\nside ** 2 = 16\nans = side", 4),
    "allowed_functions": ("a = sqrt(16) + floor(2.7) + ceiling(2.1) + abs(-1) + max(1, 2) + min(1, 2)\nans = a", 13),
    "round_half_up": ("ans = round(2.5) + round(1.234, 2)", Fraction(423, 100)),
    "irrational_real_is_float": ("ans = sqrt(2)", 2 ** 0.5),
    "trailing_semicolon_and_blanks": ("\n\n  a = 4;  \n\nans = a.\n", 4),
    "identity_line_dropped": ("a = 3\na = a\nans = a", 3),
    "ans_first": ("ans = price * 2\nprice = 7", 14),
    "fraction_answer": ("pizza = 3\npeople = 4\nans = pizza / people", Fraction(3, 4)),
    "nonlinear_product": ("w = x\nl = 2 * w\nw * l = 50\nans = l", 10),
}

FAIL_CASES = {
    "underdetermined_robe": (ROBE, "underdetermined"),
    "ans_only_declared": ("ans = x", "underdetermined"),
    "reassignment": ("distance = 30\ndistance = distance + 15\nans = distance", "unsolvable"),
    "inconsistent_system": ("a + b = 10\na + b = 12\nans = a", "unsolvable"),
    "chain_inconsistent": ("a = 3 = 4\nans = a", "unsolvable"),
    "division_by_zero": ("ans = 5 / 0", "unsolvable"),
    "inequality": ("earnings = 10\ncost = 8\nearnings > cost\nans = earnings", "syntax_error"),
    "inequality_with_equals": ("a = 3\na >= 2\nans = a", "syntax_error"),
    "comparison": ("a = 3\na == 3\nans = a", "syntax_error"),
    "control_flow": ("a = 3\nb = 4\nif a > b:\n    ans = a\nelse:\n    ans = b\nend", "syntax_error"),
    "keyword_name": ("lambda = 3\nans = lambda", "syntax_error"),
    "missing_ans": ("a = 3\nb = a + 1", "no_answer"),
    "quadratic_two_positive": ("x = y\nx ** 2 - 5 * x + 6 = 0\nans = x", "multiple_solutions"),
    "complex_answer": ("side = x\nside ** 2 = -1\nans = side", "non_numeric"),
    "garbage": ("The answer is probably 42, I think!", "syntax_error"),
    "empty": ("", "no_answer"),
    "comments_only": ("% nothing here\n%\n", "no_answer"),
    "adjacent_names": ("packages meals = 27\nans = meals", "syntax_error"),
    "empty_side": ("a =\nans = a", "syntax_error"),
    "python_code": ("a = __import__('os').system('true')\nans = a", "syntax_error"),
    "attribute_access": ("a = b.c\nans = a", "syntax_error"),
    "tuple": ("a = 1, 2\nans = a", "syntax_error"),
    "modulo": ("a = 7 % 3\nans = a", "syntax_error"),
    "unbalanced": ("a = (1 + 2\nans = a", "syntax_error"),
    "function_without_call": ("a = sqrt\nans = a", "underdetermined"),
}


@pytest.mark.parametrize("name", sorted(OK_CASES))
def test_ok_cases(name):
    text, expected = OK_CASES[name]
    result = solve_eot(text)
    assert result.reason == "ok", (name, result)
    assert result.answer == expected, (name, result)
    assert type(result.answer) is type(expected), (name, result)


@pytest.mark.parametrize("name", sorted(FAIL_CASES))
def test_failure_cases(name):
    text, reason = FAIL_CASES[name]
    result = solve_eot(text)
    assert result.reason == reason, (name, result)
    assert result.answer is None
    assert result.detail  # every failure says why


def test_exact_decimal_is_not_a_float():
    result = solve_eot("a = 0.1\nb = 0.2\nans = a + b")
    assert result.answer == Fraction(3, 10) and isinstance(result.answer, Fraction)
    assert solve_eot("ans = 0.5 * 442 + 7").answer.__class__ is int


def test_syntax_error_detail_names_the_line():
    result = solve_eot("a = 3\ntotal_earnings > total_cost\nans = a")
    assert result.reason == "syntax_error"
    assert "line 2" in result.detail and "total_earnings > total_cost" in result.detail


def test_underdetermined_detail_names_free_symbols():
    result = solve_eot(ROBE)
    assert "white_fiber" in result.detail


def test_unsolvable_detail_names_the_reassignment():
    result = solve_eot("distance = 30\ndistance = distance + 15\nans = distance")
    assert "distance = distance + 15" in result.detail


def test_positive_root_is_documented_in_detail():
    result = solve_eot("side = x\nside ** 2 = 16\nans = side")
    assert result == EotResult(4, "ok", result.detail) and "-4" in result.detail


def test_declared_letters_do_not_tie_unknowns():
    # `a = x` and `b = x` declare two independent unknowns; a == b is not implied.
    assert solve_eot("a = x\nb = x\na = 2\nb = 5\nans = a + b").answer == 7


def test_header_anywhere_and_case_insensitive():
    assert solve_eot("system of linear equations:\na = 2\nans = a").answer == 2


def test_ans_left_free_says_so():
    result = solve_eot("ans = I ** 2")  # sympy.solve picks I = ±sqrt(ans); ans stays free
    assert result.reason == "underdetermined" and "ans" in result.detail


def test_never_raises_on_odd_input():
    odd = ["=", "==", "ans =", "= 3", "ans = (", "ans = )", "ans = 1e999999", "ans = %", "ans = 5 %% 2",
           "ans = x ** x", "ans = floor(y)", "ans = [1]", "ans = {}", "ans = 'a'", "ans = \\x00", "ans = 1/0 + x",
           "ans = I ** 2", "ans = Max(a, b)", "\x00\x01", "ans = 3\n" * 50, "ans = ~1", "ans = 1 if 2 else 3",
           "ans = round(x)\nx = 2.5"]
    for text in odd:
        result = solve_eot(text)
        assert isinstance(result, EotResult)
        assert result.reason in REASONS, (text, result)
        assert (result.answer is None) == (result.reason != "ok"), (text, result)


def test_non_string_input():
    assert solve_eot(None).reason == "syntax_error"  # type: ignore[arg-type]


FORWARD_EOT = """System of linear equations: (Do not simplify)
% Assume the bird is x:
bird = x
step_1 = 3 * 4
bird = step_1 + 26
ans = bird"""


@pytest.mark.parametrize("text,expected", [
    (FORWARD_EOT, False),  # the offline teacher's forward EoT: every line assigns a name from known quantities
    ("meals = x\npackages = 8 * meals\npackages + meals = 27\nans = meals", True),  # XoT's example
    ("dallas = x\ndarcy = y\ndallas - 1 = 3 * (darcy - 1)\ndallas = 2 * darcy\nans = dallas", True),
    ("left = x\n43 - 22 = left\nans = left", False),  # a forward sum with its sides swapped
    ("left = x\nleft + 22 = 43\nans = left", True),  # the unknown inside the relation
    ("a = 3\nb = a + c\nans = b", True),  # c is never known
    ("a = 3\nb = 2 * a\nb = 6\nans = b", False),  # a check on known values is not an inversion
    ("x = floor(7 / 2)\nans = x", False),
    ("not an equation", False),
])
def test_inverts_tells_an_inversion_from_a_forward_calculation(text, expected):
    assert inverts(text) is expected
