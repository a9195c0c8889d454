"""Numbers the way math word-problem graders read them: parse, extract from prose, compare.

Exact values are int or Fraction (decimals like "2.50" become Fraction(5, 2), never a drifting float); floats only
come from executed programs. Two exact values compare exactly, anything else with a 1e-4 relative tolerance.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Union

Number = Union[int, Fraction, float]
REL_TOL = 1e-4
MAX_DIGITS = 100  # more digits is no grade-school answer; reading 2 M digits as an int takes minutes (quadratic)


class TooLarge(ValueError):
    """A number with more than MAX_DIGITS digits."""

# One number as graders see it: optional sign and currency, thousands separators, decimals, a/b fractions, percent.
_NUMBER = r"-?\$?\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s?/\s?\d+(?:\.\d+)?)?%?|-?\$?\.\d+%?"
NUMBER_RE = re.compile(_NUMBER)
_FULL_RE = re.compile(rf"^\s*({_NUMBER})\s*(?:\([^()]*\))?\s*\.?\s*$")
_ANSWER_IS_RE = re.compile(rf"answer\s+is\s*:?\s*\(?\s*({_NUMBER})", re.IGNORECASE)
_HASH_RE = re.compile(rf"####\s*({_NUMBER})")


def normalize(value: Number | Decimal) -> Number:
    """int when integral, Fraction for other exact values, float for floats (nan/inf kept)."""
    if isinstance(value, bool):
        raise TypeError("a bool is not a number answer")
    if isinstance(value, Decimal):
        value = Fraction(value)
    if isinstance(value, Fraction):
        return int(value) if value.denominator == 1 else value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value
    raise TypeError(f"not a number: {value!r}")


def _parse_token(token: str) -> Number:
    if sum(c.isdigit() for c in token) > MAX_DIGITS:
        raise TooLarge(f"a number of {sum(c.isdigit() for c in token)} digits")
    text = token.replace("$", "").replace(",", "").replace(" ", "")
    text = text.rstrip("%")  # graders read "50%" as 50: percent answers are written as the percent number
    if "/" in text:
        num, den = text.split("/")
        den_value = Fraction(Decimal(den))
        if den_value == 0:
            raise ValueError(f"zero denominator in {token!r}")
        return normalize(Fraction(Decimal(num)) / den_value)
    return normalize(Decimal(text))


def parse_number(text: str | Number) -> Number | None:
    """'1,600' -> 1600, '$5' -> 5, '5.00' -> 5, '3/4' -> Fraction(3, 4), '9 (apples)' -> 9; None if not one number."""
    if not isinstance(text, str):
        return normalize(text)
    match = _FULL_RE.match(text)
    if not match:
        return None
    try:
        return _parse_token(match.group(1))
    except TooLarge:
        return None
    except (InvalidOperation, ValueError, ZeroDivisionError):
        return None


@dataclass(frozen=True)
class Extraction:
    """The final answer read from a CoT rationale and the rule that found it ("answer_is", "hash", "last_number")."""

    value: Number | None
    rule: str | None
    span: str | None = None
    too_large: bool = False  # the rule found a number, but one of more than MAX_DIGITS digits


def extract_answer(text: str) -> Extraction:
    """CoT answer: 'The answer is N', else '#### N', else the last number in the text."""
    for rule, pattern in (("answer_is", _ANSWER_IS_RE), ("hash", _HASH_RE), ("last_number", NUMBER_RE)):
        for token in reversed(pattern.findall(text)):
            try:
                value = _parse_token(_FULL_RE.match(token).group(1)) if _FULL_RE.match(token) else None
            except TooLarge:
                return Extraction(None, rule, token[:40] + "...", too_large=True)
            except (InvalidOperation, ValueError, ZeroDivisionError):
                value = None
            if value is not None:
                return Extraction(value, rule, token)
    return Extraction(None, None)


def is_exact(value: Number) -> bool:
    return isinstance(value, (int, Fraction))


def numbers_equal(pred: Number | None, gold: Number | None) -> bool:
    """Exact comparison when both sides are exact, else |pred - gold| <= 1e-4 * max(1, |gold|)."""
    if pred is None or gold is None:
        return False
    if is_exact(pred) and is_exact(gold):
        return Fraction(pred) == Fraction(gold)
    pred_f, gold_f = float(pred), float(gold)
    if not (math.isfinite(pred_f) and math.isfinite(gold_f)):
        return False
    return abs(pred_f - gold_f) <= REL_TOL * max(1.0, abs(gold_f))


def to_json(value: Number | None) -> str | None:
    """A lossless text form for CSV/JSON: '12', '3/4', '0.30000000000000004' (a number past Python's 4300-digit
    str() limit is written as its size, never raised on)."""
    if value is None:
        return None
    if isinstance(value, float):
        return repr(value)
    try:
        return str(value)
    except ValueError:
        return f"<a number of about {int(math.log10(abs(Fraction(value)).numerator or 1))} digits>"


def from_json(text: str | Number | None) -> Number | None:
    """Inverse of to_json: '12' -> int, '3/4' -> Fraction, anything else -> float (to_json writes floats by repr, so
    a float stays a float and keeps its tolerance in numbers_equal); a number (or None) is returned as it is."""
    if not isinstance(text, str):
        return text
    if "/" in text:
        return Fraction(text)
    try:
        return int(text)
    except ValueError:
        return float(text)
