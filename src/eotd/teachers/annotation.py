"""The annotation teacher: CoT, PoT and EoT rationales derived from a dataset's gold worked solution. NOT an LLM.

It is the offline default teacher: deterministic, free, and every rationale it writes is a rewrite of the gold
solution, so the distilled data says nothing about what an LLM teacher would produce (``is_llm = False``).

Two solution shapes, one code path (``extract_steps`` picks by shape, ``build`` writes all three thought types):

* GSM8K: calculator annotations ``She makes 9 * 2 = $<<9*2=18>>18 every day.`` and a final ``#### 18``. Each
  ``<<a op b=c>>`` is one step.
* GSM-Symbolic (reasoning-gym ``answer_cot``) and any other solution without ``<<`` tags: calculations are read
  from the text, ``160-48=112``, ``35 × 3 = 105``, ``220.0 meters / 2.0 meters per plant = 110 plants`` (unit
  words, ``days/week`` and ``per x`` between numbers are skipped), chains ``0.5 * 442 + 7 = 228``,
  ``100% - 20% = 80%``. A bare ``48=48`` (no operator) is not a step. ``x``/``×`` are ``*``, ``÷`` is ``/``,
  ``^`` is ``**``; ``N%`` is ``N/100`` unless every number of the step (result included) is a percentage.

SVAMP, ASDiv and MultiArith carry their own equations instead; ``equation_solution`` (called by ``eotd.data``'s
loaders) writes them in the GSM8K format, one annotated line per operation, evaluated by the same parser.

Rationales:

* CoT: the gold text, annotations removed, ``#### N`` replaced by ``The answer is N.`` (written even when the
  calculations cannot be used: the text itself is the gold solution).
* PoT (executor style, version 2): one assignment per step to a snake_case name taken from the words around the
  result (``duck_eggs``, ``daily_earnings``; ``step_3`` when no good name), and no comment lines: the gold
  sentences carry computed numbers, and a small student copies them and does its arithmetic in the comments.
  Numbers keep their origin: a number written in the question is always written as that number; a number equal to
  an earlier result is that result's name (most recent step first, exact match only), except a conversion factor
  named as such (``12 months``, ``60 minutes``), which stays a constant even when a result happens to equal it.
  Last line ``ans = <last name>``.
* EoT: the same steps as equations in XoT's format; the final quantity is introduced as an unknown first
  (``% Assume the daily earnings are x:`` / ``daily_earnings = x``), then constrained by its equation, and the
  system ends with ``% <question> The answer is <name>:`` / ``ans = <name>``. ``%`` comments quote the question,
  never a computed result. No header line (the trigger has it).
* ``style="commented"`` writes version 1's layout: each step preceded by a ``#``/``%`` comment with its gold sentence
  (computed numbers included). The rationale-style ablation compares the two.

A step must be consistent: the expression's exact value equals the written result, up to the 1e-4 relative
tolerance of ``eotd.answers.numbers_equal`` or rounding to the written decimals (``10/3=3.33``); the last step's
value must equal the gold ``####`` answer. Otherwise PoT/EoT get ``Completion(None, error=<reason>)`` with reason
``no_annotations`` (no steps found), ``unparseable_annotation`` (a ``<<...>>`` that is not ``expr=number``),
``annotation_mismatch`` (a step whose expression does not give its result) or ``last_step_not_answer``.
Float reprs in the gold text (``0.6666666666666666``) are written as the fraction they round (``(2 / 3)``); a
result that is its expression rounded down (``17*0.5=8``, GSM-Symbolic templates use ``int()``) becomes
``int(...)`` in PoT and ``floor(...)`` in EoT. ``//`` is accepted only where the division is exact (then ``/``).

Lines without ``<<>>`` in an annotated GSM8K solution are read as text too: many solutions do their last step in
plain text (``She bought 4 tops for $20 so 20/4 = $5``). There an inconsistent text reading is dropped rather
than an error (only annotations are trusted).

Measured (version 2; version 1 had the same rates, ``tests/benchmarks/bench_annotation.py``); every rationale written verifies:

* GSM8K train, 7473: 7258 converted (97.1%). Failures: 112 ``last_step_not_answer`` where the last line has no
  annotation and no ``a op b = c`` that reads (prose like ``23 total meters – 13 calculated meters = 10``,
  ``6/3=.5 hour which is 30 minutes``, mixed numbers ``1 1/2``); 21 ``last_step_not_answer`` where the answer
  is not the last annotated result (unit conversions in words, a final step done in prose, percent answers
  ``0.25`` vs ``25``); 57 ``no_annotations`` + 19 ``annotation_mismatch`` + 6 ``last_step_not_answer`` among the
  95 solutions without any annotation (algebra: ``6W = 30``, ``X*2 - $40 = $250``; 13 of them convert).
* GSM-Symbolic, 2000 (seed 0, train templates): 1936 converted (96.8%). Failures: 35 ``no_annotations``
  (algebra templates: ``2x+140=198``), 29 ``last_step_not_answer`` (answer derived in prose, ``W = 8``).
"""
from __future__ import annotations

import hashlib
import keyword
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Callable, Iterable, Iterator

from eotd import relations
from eotd.answers import Number, normalize, numbers_equal, parse_number
from eotd.protocol import THOUGHTS
from eotd.teachers.base import Completion, Request, Usage

VERSION = "3"
STYLES = ("executor", "commented")
EOT_FORMS = ("relational", "forward")
REASONS = ("no_gold_solution", "no_final_answer", "no_annotations", "unparseable_annotation", "annotation_mismatch",
           "last_step_not_answer", "unknown_thought", "unknown_style")
SAMPLE_ERROR = "deterministic: one rationale per question"

class ConversionError(ValueError):
    """A solution the teacher cannot turn into a PoT/EoT rationale; ``reason`` is one of REASONS."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


# ---------------------------------------------------------------- expressions

@dataclass
class _Num:
    text: str  # canonical literal, e.g. "400000", "0.5", "(2 / 3)", "(20 / 100)"
    value: Fraction
    written: Fraction  # the value before a percent sign was applied


@dataclass
class Step:
    """One calculation ``tokens = result`` with the sentence it came from."""

    variants: list  # [(tokens, result)]: the readings to try; tokens are _Num | "+" | "-" | "*" | "/" | ...
    result_text: str
    sentence: str
    before: str = ""  # text before the expression (for naming)
    after: str = ""  # text after the result (for naming)
    currency: bool = False
    strict: bool = True  # an inconsistent reading is an error (else the step is dropped)
    tokens: list = field(default_factory=list)  # the reading that checked out
    result: Fraction = Fraction(0)
    value: Fraction = Fraction(0)  # exact value of the step (after `floor`)
    floor: bool = False  # the written result is the expression rounded down: int(...) / floor(...)
    name: str = ""


def _float_fraction(dec: Decimal) -> Fraction:
    """A long decimal that is the float repr of a small fraction (0.6666666666666666) becomes that fraction."""
    exact = Fraction(dec)
    digits = -dec.as_tuple().exponent if isinstance(dec.as_tuple().exponent, int) else 0
    if digits >= 10:
        simple = exact.limit_denominator(1000)
        if simple != exact and abs(float(simple) - float(exact)) <= 1e-12 * max(1.0, abs(float(exact))):
            return simple
    return exact


def _number(text: str) -> _Num:
    """'$400,000' -> 400000, '.5' -> 0.5, '20%' -> (20 / 100), '0.6666666666666666' -> (2 / 3)."""
    raw = re.sub(r"[$£€¥₹,\s]", "", text)
    percent = raw.endswith("%")
    raw = raw.rstrip("%")
    try:
        dec = Decimal(raw)
    except InvalidOperation:
        raise ConversionError("unparseable_annotation", f"bad number {text!r}") from None
    value = _float_fraction(dec)
    if value.denominator == 1:
        literal = str(value.numerator)
    elif value == Fraction(dec):
        literal = format(dec.normalize(), "f") if dec == dec.to_integral_value() else format(dec, "f")
        literal = literal.lstrip("0") or "0"
        literal = "0" + literal if literal.startswith(".") else literal
    else:
        literal = f"({value.numerator} / {value.denominator})"
    if percent:
        return _Num(f"({literal} / 100)", value / 100, value)
    return _Num(literal, value, value)


class _Parser:
    """Recursive descent over tokens: exact value, or ConversionError. ``on_step(left, op, right, value)``, when
    given, sees each binary operation in evaluation (post-)order."""

    def __init__(self, tokens: list, on_step: Callable | None = None):
        self.tokens, self.i, self.on_step = tokens, 0, on_step

    def peek(self):
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self):
        tok = self.peek()
        self.i += 1
        return tok

    def parse(self) -> Fraction:
        value = self.sum()
        if self.peek() is not None:
            raise ConversionError("unparseable_annotation", f"unexpected {self.peek()!r}")
        return value

    def step(self, left: Fraction, op: str, right: Fraction, value: Fraction) -> Fraction:
        if self.on_step:
            self.on_step(left, op, right, value)
        return value

    def sum(self) -> Fraction:
        value = self.product()
        while self.peek() in ("+", "-"):
            op, rhs = self.take(), self.product()
            value = self.step(value, op, rhs, value + rhs if op == "+" else value - rhs)
        return value

    def product(self) -> Fraction:
        value = self.power()
        while self.peek() in ("*", "/", "//"):
            k = self.i
            op, rhs = self.take(), self.power()
            if op != "*" and rhs == 0:
                raise ConversionError("annotation_mismatch", "division by zero")
            if op == "//":
                if (value / rhs).denominator != 1:
                    raise ConversionError("unparseable_annotation", "floor division with a remainder")
                op = self.tokens[k] = "/"  # exact: written as a plain division
            value = self.step(value, op, rhs, value * rhs if op == "*" else value / rhs)
        return value

    def power(self) -> Fraction:
        base = self.unary()
        if self.peek() == "**":
            self.take()
            exp = self.power()
            if exp.denominator != 1 or abs(exp) > 64 or (base == 0 and exp < 0):
                raise ConversionError("unparseable_annotation", "unsupported power")
            return self.step(base, "**", exp, base ** int(exp))
        return base

    def unary(self) -> Fraction:
        if self.peek() in ("-", "+"):
            return -self.unary() if self.take() == "-" else self.unary()
        tok = self.take()
        if isinstance(tok, _Num):
            return tok.value
        if tok == "(":
            value = self.sum()
            if self.take() != ")":
                raise ConversionError("unparseable_annotation", "unbalanced parentheses")
            return value
        raise ConversionError("unparseable_annotation", f"expected a number, got {tok!r}")


_EXPR_TOKEN = re.compile(r"\s*(?:(?P<num>[$£€]?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?%?|[$£€]?\.\d+%?)"
                         r"|(?P<op>\*\*|//|[-+*/^()×÷xX−–]))")
# "//" is kept only where the division is exact (then it is "/"); the parser rejects it otherwise.
_OPS = {"×": "*", "x": "*", "X": "*", "÷": "/", "^": "**", "−": "-", "–": "-"}


def _expr_tokens(text: str) -> list:
    """Tokens of an annotation expression like '16-3-4' or '2(3+4)' (implicit products get a '*')."""
    out, pos, text = [], 0, text.strip()
    while pos < len(text):
        m = _EXPR_TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ConversionError("unparseable_annotation", f"cannot read {text!r}")
        pos = m.end()
        tok = _number(m["num"]) if m["num"] else _OPS.get(m["op"], m["op"])
        prev = out[-1] if out else None
        if (tok == "(" or isinstance(tok, _Num)) and (isinstance(prev, _Num) or prev == ")"):
            out.append("*")
        out.append(tok)
    return out


def _consistent(value: Fraction, result: Fraction, result_text: str) -> bool:
    """Exact, within numbers_equal's float tolerance, or rounded to the written decimals (10/3 = 3.33)."""
    if value == result or numbers_equal(float(value), float(result)):
        return True
    decimals = len(result_text.split(".")[1].rstrip("%")) if "." in result_text else 0
    return decimals > 0 and abs(value - result) <= Fraction(1, 2 * 10 ** decimals)


def _variants(tokens: list, result: _Num, result_text: str) -> list[tuple[list, Fraction]]:
    """(tokens, result) readings to try in order. N% is N/100, except when the result carries a % too: then the
    plain reading on the percent numbers is tried first (100% - 20% = 80%; 85 / 250 * 100% = 34%)."""
    out = [(tokens, result.value)]
    if result_text.rstrip().endswith("%"):
        plain = [_Num(t.text[1:-len(" / 100)")], t.written, t.written) if isinstance(t, _Num)
                 and t.text.endswith(" / 100)") else t for t in tokens]
        out.insert(0, (plain, result.written))
    return out


# ---------------------------------------------------------------- benchmark equations as worked solutions

# Benchmark equations are Python-style arithmetic (`( 76.0 - 25.0 )`); the annotation reader's `x`, commas, units and
# implicit products would misread them (`2x+4x=27`, `1,000`), so they get this strict front end to the same _Parser.
_EQUATION_TOKEN = re.compile(r"\s*(?:(?P<num>\d+(?:\.\d*)?|\.\d+)|(?P<op>[-+*/()]))")
_ASKED = re.compile(r"\bhow (?:many|much) (?:more |fewer |less )?([a-z]+)", re.IGNORECASE)
_NOT_UNITS = {"more", "fewer", "less", "do", "does", "did", "is", "are", "was", "were", "will", "can", "has", "have",
              "had", "would", "should", "of", "in", "time", "longer", "further", "farther", "bigger", "larger"}


def _equation_tokens(text: str) -> list:
    """Tokens of a benchmark equation: numbers, + - * / and parentheses (a unary + is rejected), else
    ConversionError."""
    out, pos, text = [], 0, text.strip()
    while pos < len(text):
        m = _EQUATION_TOKEN.match(text, pos)
        if not m or m["op"] == "+" and (not out or out[-1] in ("(", "+", "-", "*", "/")):
            raise ConversionError("unparseable_annotation", f"not plain arithmetic: {text[:60]!r}")
        pos = m.end()
        out.append(_number(m["num"]) if m["num"] else m["op"])
    return out


def _number_text(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    return f"{float(value):.4f}".rstrip("0").rstrip(".")


def equation_solution(expression: str, answer: Number, question: str = "") -> str | None:
    """A benchmark's own equation (SVAMP `( 76.0 - 25.0 )`, MultiArith `X=((32.0+42.0)-35.0)`, ASDiv `7+2=9`) as a
    worked solution in GSM8K's annotated format (one `a op b = <<a op b=c>>c` line per operation), so the teacher
    converts it like a GSM8K solution; the final line names what the question asks for (`How many pieces ...` ->
    `pieces`). None when the equation is not plain arithmetic on numbers or does not give `answer`."""
    text = expression.strip()
    text = text.split("=", 1)[1] if re.match(r"^[A-Za-z]\s*=", text) else text.rsplit("=", 1)[0]
    lines: list[str] = []

    def line(left: Fraction, op: str, right: Fraction, value: Fraction) -> None:
        expr = f"{_number_text(left)} {op} {_number_text(right)}"
        lines.append(f"{expr} = <<{expr.replace(' ', '')}={_number_text(value)}>>{_number_text(value)}")

    try:
        value = _Parser(_equation_tokens(text), line).parse()
    except (ConversionError, RecursionError):
        return None
    if not lines or abs(float(value) - float(answer)) > 1e-4 * max(1.0, abs(float(answer))):
        return None
    asked = next((w.lower() for w in _ASKED.findall(question) if w.lower() not in _NOT_UNITS), None)
    if asked:
        lines[-1] += f" {asked}"
    return "\n".join([*lines, f"#### {_number_text(value)}"])


# ---------------------------------------------------------------- reading steps

_ANNOTATION = re.compile(r"<<([^<>]*)>>")
_FINAL = re.compile(r"^\s*####\s*(.*?)\s*$", re.MULTILINE)
_NUM_AT = re.compile(r"\s*[$£€]?\s*-?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)?(?:\.\d+)?%?")
_EXPR_TAIL = re.compile(r"[\d\s+\-*/x×÷^=().,$£€%−–]*$")


def _final_answer(solution: str) -> tuple[str, Number]:
    found = _FINAL.findall(solution)
    value = parse_number(found[-1]) if found else None
    if value is None:
        raise ConversionError("no_final_answer", "no '#### N' line with a number")
    return found[-1], value


def _body_lines(solution: str) -> list[str]:
    return [line for line in solution.splitlines() if line.strip() and not _FINAL.match(line)]


def _annotation_steps(line: str) -> list[Step]:
    steps = []
    clean = _ANNOTATION.sub("", line).strip()
    for m in _ANNOTATION.finditer(line):
        inner = m.group(1)
        if inner.count("=") != 1:
            raise ConversionError("unparseable_annotation", f"<<{inner}>>")
        expr, result_text = inner.split("=")
        tokens = _expr_tokens(expr)
        result = _expr_tokens(result_text)
        if len(result) == 2 and result[0] == "-" and isinstance(result[1], _Num):
            result = [_Num("-" + result[1].text, -result[1].value, -result[1].written)]
        if len(result) != 1 or not isinstance(result[0], _Num):
            raise ConversionError("unparseable_annotation", f"<<{inner}>>")
        prefix = _ANNOTATION.sub("", line[:m.start()])
        suffix = _ANNOTATION.sub("", line[m.end():])
        suffix = suffix[_NUM_AT.match(suffix).end():]
        before = prefix[:len(prefix) - len(_EXPR_TAIL.search(prefix).group(0))]
        steps.append(Step(_variants(tokens, result[0], result_text), result_text.strip(), clean, before, suffix,
                          "$" in prefix[-3:], strict=True))
    return steps


# Text-mode tokens: numbers (currency, commas, %), operators, parentheses, '=', words, and anything else (a break).
_TEXT_TOKEN = re.compile(
    r"(?P<num>[$£€¥₹]?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?%?|[$£€]?\.\d+%?)"
    r"|(?P<op>\*\*|//|[-+*/^×÷−–])|(?P<lp>\()|(?P<rp>\))|(?P<eq>=)"
    r"|(?P<word>[A-Za-z][A-Za-z'’]*)|(?P<ws>\s+)|(?P<other>.)")
_MAX_UNIT_WORDS = 6


def _scan(toks: list, p: int, line: str):
    """Parse `expr = result` starting at toks[p]; (expr tokens, result index, negative result) or None."""
    out, depth, ops, i, state, units = [], 0, 0, p, "operand", 0
    n = len(toks)
    while i < n:
        kind, text, pos = toks[i]
        if state == "operand":
            if kind == "lp":
                out.append("(")
                depth += 1
            elif kind == "num":
                end = pos + len(text)
                if end < len(line) and line[end].isalpha():
                    return None  # 2W, 1.2Y, 5A: algebra, not a calculation
                out.append(_number(text))
                state, units = "after", 0
            elif kind == "op" and text in "-−–" and not out and i + 1 < n and toks[i + 1][2] == pos + 1:
                out.append("-")  # -5 (a '- ' with a space is a list bullet)
            else:
                return None
            i += 1
            continue
        # after an operand
        nxt = toks[i + 1] if i + 1 < n else (None, "", 0)
        if kind == "word" and text in ("x", "X") and nxt[0] in ("num", "lp"):
            out.append("*")
            ops += 1
            state = "operand"
        elif kind == "word":
            units += 1
            if units > _MAX_UNIT_WORDS or (len(text) == 1 and text.isupper()):
                return None
        elif kind == "op" and text == "/" and nxt[0] == "word" and nxt[1] not in ("x", "X"):
            i += 1  # days/week: a unit, not a division
        elif kind == "op":
            out.append(_OPS.get(text, text))
            ops += 1
            state = "operand"
        elif kind == "rp" and depth > 0:
            out.append(")")
            depth -= 1
        elif kind == "eq":
            j = i + 1
            neg = j < n and toks[j][0] == "op" and toks[j][1] in "-−–"
            j += neg
            if j < n and toks[j][0] == "num" and ops and not depth:
                return out, j, neg
            return None
        else:
            return None
        i += 1
    return None


def _text_steps(line: str, strict: bool) -> list[Step]:
    steps = []
    toks = [(m.lastgroup, m.group(), m.start()) for m in _TEXT_TOKEN.finditer(line) if m.lastgroup != "ws"]
    p = 0
    while p < len(toks):
        starts = toks[p][0] in ("num", "lp") or toks[p][1] in ("-", "−", "–")
        after_op = p > 1 and toks[p - 1][0] in ("op", "lp") and not (toks[p - 1][1] == "-" and p > 1
                                                                    and toks[p - 2][0] == "eq")
        found = _scan(toks, p, line) if starts and not after_op else None
        if found is None:
            p += 1
            continue
        expr, j, neg = found
        result_tok = toks[j]
        result_text = ("-" if neg else "") + result_tok[1]
        result = _number(result_tok[1])
        if neg:
            result = _Num("-" + result.text, -result.value, -result.written)
        end = result_tok[2] + len(result_tok[1])
        steps.append(Step(_variants(expr, result, result_text), result_text, line.strip(), line[:toks[p][2]],
                          line[end:], result_tok[1][:1] in "$£€¥₹", strict=strict))
        p = j  # chains: the result may start the next calculation
    return steps


def extract_steps(solution: str) -> list[Step]:
    """The calculations of a gold solution, checked and named; raises ConversionError.

    Lines with ``<<...>>`` annotations give those steps (strict: an inconsistent one is an error). Other lines are
    read as text; in a solution that has annotations elsewhere, an inconsistent text calculation is dropped (the
    reading is not trusted), in one without annotations it is an error.
    """
    annotated = "<<" in solution
    steps = []
    for line in _body_lines(solution):
        steps += _annotation_steps(line) if "<<" in line else _text_steps(line, strict=not annotated)
    if not steps:
        raise ConversionError("no_annotations", "no calculation found")
    kept = []
    for k, step in enumerate(steps, 1):
        for tokens, result in step.variants:
            value = _Parser(tokens).parse()
            if _consistent(value, result, step.result_text):
                step.tokens, step.result, step.value = tokens, result, value
                kept.append(step)
                break
            if value > 0 and result.denominator == 1 and value // 1 == result:
                step.tokens, step.result, step.value, step.floor = tokens, result, result, True
                kept.append(step)  # 17 * 0.5 = 8: the text rounds down (GSM-Symbolic templates use int())
                break
        else:
            if step.strict:
                tokens, _ = step.variants[-1]
                raise ConversionError("annotation_mismatch", f"step {k}: {_render(tokens, {})} = {step.result_text}"
                                      f" but evaluates to {float(_Parser(tokens).parse()):g}")
    if not kept:
        raise ConversionError("annotation_mismatch", "no consistent calculation")
    _name_steps(kept)
    return kept


# ---------------------------------------------------------------- names

_STOP = set("""a an the and or of in on at to for from by with into onto each every per is are was were be been
being will would can could should so that this these those which who whom whose then than as it its he she they we
you i his her their our your my him them me us there here if but after before since because when while now all
also just only both either any some more less about over under up down out off again still has have had do does
did get gets got make total altogether overall already another other ones one two three four five six seven eight
nine ten half twice times time how what much many additional extra new remaining""".split())
_VERB_NOUN = {"makes": "earnings", "made": "earnings", "make": "earnings", "earns": "earnings", "earned": "earnings",
              "earn": "earnings", "pays": "cost", "paid": "cost", "pay": "cost", "spends": "spent",
              "spend": "spent", "costs": "cost", "saves": "savings", "saved": "savings", "save": "savings",
              "needs": "needed", "need": "needed", "sells": "sold", "sold": "sold", "buys": "bought",
              "bought": "bought", "reads": "read", "read": "read", "weighs": "weight", "eats": "eaten",
              "ate": "eaten", "drinks": "drunk", "runs": "distance", "ran": "distance", "walks": "distance",
              "walked": "distance", "drives": "distance", "drove": "distance"}
_PERIOD = {"day": "daily", "week": "weekly", "month": "monthly", "year": "yearly", "hour": "hourly",
           "minute": "per_minute"}
_RESERVED = {"ans", "x", "step", "sqrt", "floor", "ceiling", "ceil", "abs", "min", "max", "round", "sum", "int",
             "float", "print", "len", "range", "pow", "list", "dict", "set", "str", "type", "input", "open", "id"}
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*|[^\sA-Za-z]+")


def _words(text: str) -> list[str]:
    return [w.lower().replace("’", "'").split("'")[0].replace("-", "_") for w in _WORD.findall(text)]


def _period(after: str) -> str:
    m = re.match(r"\W*(?:a|an|per|every|each|/)\s*(day|week|month|year|hour|minute)\b", after.lower())
    return _PERIOD[m.group(1)] if m else ""


def _name_from(step: Step) -> str:
    after = _words(step.after)
    nouns = []
    for w in after:
        if not w.isidentifier() or w in _STOP or not w.isascii():
            break
        nouns.append(w)
    if len(nouns) > 3:
        nouns = nouns[:3]
    rest_after = step.after
    if nouns:
        idx = step.after.lower().find(nouns[-1])
        rest_after = step.after[idx + len(nouns[-1]):] if idx >= 0 else ""
    period = _period(rest_after)
    if not nouns:
        before = [w for w in _words(step.before) if w.isidentifier() and w.isascii()]
        content = [w for w in before if w not in _STOP]
        verb = next((_VERB_NOUN[w] for w in reversed(before[-3:]) if w in _VERB_NOUN), None)
        if verb:
            nouns = [verb]
        elif content and before and before[-1] == content[-1] and len(content[-1]) > 2:
            nouns = content[-2:]
    if not nouns:
        return ""
    if period and period not in nouns:
        nouns = ([period] + nouns) if not period.startswith("per_") else nouns + [period]
    name = "_".join(nouns)
    name = re.sub(r"_+", "_", name).strip("_")
    if len(name) < 2 or not name.isidentifier() or keyword.iskeyword(name) or name in _RESERVED:
        return ""
    return name[:40].rstrip("_")


def _name_steps(steps: list[Step]) -> None:
    used: set[str] = set()
    for k, step in enumerate(steps, 1):
        base = _name_from(step) or f"step_{k}"
        name, n = base, 2
        while name in used or re.fullmatch(r"step_\d+", name) and name != f"step_{k}" or keyword.iskeyword(name):
            name, n = f"{base}_{n}", n + 1
        used.add(name)
        step.name = name


# ---------------------------------------------------------------- writing

def _render(tokens: list, names: dict[Fraction, str]) -> str:
    out, prev = [], None
    for tok in tokens:
        if isinstance(tok, _Num):
            text = names.get(tok.value, tok.text) if tok.text == tok.text.strip("()") or tok.value in names \
                else tok.text
            out.append(text)
        elif tok == "-" and (prev is None or prev in ("(", "+", "-", "*", "/", "**")):
            out.append("-")
            prev = tok
            continue
        else:
            out.append(tok)
        prev = tok
    text = " ".join(out)
    text = re.sub(r"\( ", "(", text)
    text = re.sub(r" \)", ")", text)
    return re.sub(r"(^|[(*/+] |\*\* )- (?=\S)", r"\1-", text)


def _short(sentence: str, limit: int = 100) -> str:
    sentence = " ".join(sentence.split())
    return sentence if len(sentence) <= limit else sentence[:limit - 3].rstrip() + "..."


# A conversion factor named right after its number: a constant of the world, never an earlier result's variable.
_UNIT_FACTORS = {3: "feet|ft", 4: "quarts?|quarters?", 7: "days?", 12: "months?|inches|dozens?", 16: "ounces?|oz",
                 24: "hours?", 30: "days?", 52: "weeks?", 60: "minutes?|seconds?|mins?|secs?", 100: "cents?|cm",
                 365: "days?", 1000: "meters?|grams?|milliliters?|ml|mg|kg|m|g"}


def question_numbers(question: str | None) -> set[Fraction]:
    """The values of the numbers written in a question (a percentage both as written and as a fraction)."""
    values: set[Fraction] = set()
    for m in _TEXT_TOKEN.finditer(question or ""):
        if m.lastgroup == "num":
            num = _number(m.group())
            values |= {num.value, num.written}
    return values


def _unit_factor(value: Fraction, sentence: str) -> bool:
    units = _UNIT_FACTORS.get(value) if value.denominator == 1 else None
    return bool(units and re.search(rf"(?<![\d.,]){value.numerator}\s*(?:{units})\b", sentence, re.IGNORECASE))


def _expressions(steps: list[Step], floor: str, question: str | None = None) -> list[str]:
    """Each step's right-hand side, earlier results reused by name (most recent step with that exact value) unless
    the number is the question's own or a named conversion factor; a rounded-down step is wrapped in `floor`
    ("int" for PoT, "floor" for EoT)."""
    given = question_numbers(question)
    names: dict[Fraction, str] = {}
    out = []
    for step in steps:
        usable = {v: n for v, n in names.items() if v not in given and not _unit_factor(v, step.sentence)}
        text = _render(step.tokens, usable)
        out.append(f"{floor}({text})" if step.floor else text)
        if step.value == step.result or numbers_equal(float(step.value), float(step.result)):
            names[step.result] = step.name  # the variable holds (up to float noise) the written result
        else:
            names.pop(step.result, None)
    return out


_SENTENCE_END = re.compile(r"(?<!\bMr)(?<!\bMs)(?<!\bMrs)(?<!\bDr)(?<!\bSt)[.!?]\s+(?=[A-Z\"'])")


def _question_line(question: str | None) -> str:
    """The question's last sentence ending in '?' (or a stand-in)."""
    text = " ".join((question or "").split())
    if "?" in text:
        text = text[:text.rindex("?") + 1]
        return _short(_SENTENCE_END.split(text)[-1].strip(), 120)
    return "What is the answer?"


def cot_text(solution: str) -> str:
    """The gold text without annotations, '#### N' -> 'The answer is N.'"""
    text, _ = _final_answer(solution)
    lines = [_ANNOTATION.sub("", line).rstrip() for line in _body_lines(solution)]
    return "\n".join([*lines, f"The answer is {text}."])


def pot_text(steps: list[Step], question: str | None = None, style: str = "executor") -> str:
    lines = []
    for step, expr in zip(steps, _expressions(steps, "int", question)):
        if style == "commented":
            lines.append(f"# {_short(step.sentence)}")
        lines.append(f"{step.name} = {expr}")
    return "\n".join([*lines, f"ans = {steps[-1].name}"])


def eot_text(steps: list[Step], question: str | None = None, style: str = "executor") -> str:
    lines = []
    last = steps[-1]
    words = "the answer" if re.fullmatch(r"step_\d+", last.name) else \
        "the " + re.sub(r"_\d+$", "", last.name).replace("_", " ")
    for k, (step, expr) in enumerate(zip(steps, _expressions(steps, "floor", question))):
        if k == len(steps) - 1:
            lines += [f"% Assume {words} is x:", f"{step.name} = x"]
        if style == "commented":
            lines.append(f"% {_short(step.sentence)}")
        lines.append(f"{step.name} = {expr}")
    return "\n".join([*lines, f"% {_question_line(question)} The answer is {last.name}:", f"ans = {last.name}"])


def checked_steps(solution: str) -> list[Step]:
    """extract_steps plus the final check: the last step's value is the gold '####' answer."""
    _, gold = _final_answer(solution)
    steps = extract_steps(solution)
    if not numbers_equal(normalize(steps[-1].value), gold) and not numbers_equal(float(steps[-1].value), gold):
        raise ConversionError("last_step_not_answer",
                              f"last step gives {float(steps[-1].value):g}, the answer is {gold}")
    return steps


def gold_numbers(steps: list[Step], question: str | None) -> list[Fraction]:
    """The numbers the gold calculation takes from the question (every operand that is not an earlier step's result,
    a number the question writes counting as the question's)."""
    given = question_numbers(question)
    results: list[Fraction] = []
    numbers = []
    for step in steps:
        numbers += [t.value for t in step.tokens if isinstance(t, _Num) and (t.value in given or t.value not in results)]
        results.append(step.result)
    return numbers


_STEP_CUES = {"/": re.compile(r"\b(each|per|every|equally|among|between|split|shared?|divided|times|twice|apiece)\b",
                              re.IGNORECASE),
              "-": re.compile(r"\b(total|in all|altogether|combined|together|more than|fewer than|less than)\b",
                              re.IGNORECASE)}


def _tied_step(steps: list[Step], question: str) -> tuple[int, str] | None:
    """The last gold step `a / b` or `a - b` whose known number b stands in a question sentence with a cue that states
    the reverse relation (`each`, `times`, `a total of`, `more than`): (its index, the cue)."""
    sentences = _SENTENCE_END.split(" ".join(question.split()))
    for k in range(len(steps) - 1, -1, -1):
        tokens = steps[k].tokens
        if len(tokens) != 3 or tokens[1] not in _STEP_CUES or not isinstance(tokens[2], _Num):
            continue
        number = re.compile(rf"(?<![\d.]){re.escape(tokens[2].text)}(?![\d])")
        for sentence in sentences:
            if number.search(sentence.replace(",", "")) and (cue := _STEP_CUES[tokens[1]].search(sentence)):
                return k, cue.group(0)
    return None


def eot_reading(solution: str, question: str | None) -> tuple[str, relations.Reading]:
    """The relational EoT of a gold solution and the reading it came from. The question's text first
    (relations.relational_eot over the gold's numbers); else a gold step tied to a cue of the question, written as
    the relation the cue states (`b * name = a` for `a / b`, `name + b = a` for `a - b`); else the forward EoT, whose
    reading is ("forward", "")."""
    steps = checked_steps(solution)
    question = question or ""
    reading = relations.read(question)
    if reading is not None and reading.form == "inverse":
        text = relations.relational_eot(question, gold_numbers(steps, question), reading)
        if text is not None:
            return text, reading
    tied = _tied_step(steps, question)
    forward = eot_text(steps, question)
    if tied is None:
        if reading is not None:
            return forward, reading  # the text's own relation has the result as its unknown
        return forward, relations.Reading("forward", "")
    k, cue = tied
    step = steps[k]
    rhs = _expressions(steps, "floor", question)[k]
    left, op, right = rhs.rsplit(" ", 2) if rhs.count(" ") >= 2 else (rhs, "", "")
    if step.floor or op not in ("/", "-"):
        return forward, relations.Reading("forward", "")
    relation = f"{right} * {step.name} = {left}" if op == "/" else f"{step.name} + {right} = {left}"
    lines = forward.splitlines()
    at = max(i for i, line in enumerate(lines) if line == f"{step.name} = {rhs}")
    lines[at:at + 1] = [f"% {_short(_cue_sentence(question, cue))}", relation]
    schema = "groups-count" if op == "/" else "combine-part"
    if op == "/" and re.search(r"times|twice", cue):
        schema = "times"
    if op == "-" and "than" in cue:
        schema = "compare-referent"
    return "\n".join(lines), relations.Reading(schema, cue)


def _cue_sentence(question: str, cue: str) -> str:
    return next((s for s in _SENTENCE_END.split(" ".join(question.split())) if cue in s), cue)


def convert(solution: str, thought: str, question: str | None = None, style: str = "executor",
            eot_form: str = "relational") -> str:
    """The `thought` ("cot", "pot", "eot") rationale for a gold solution in `style`, EoT in `eot_form`; raises
    ConversionError."""
    if thought not in THOUGHTS:
        raise ConversionError("unknown_thought", f"thought must be one of {THOUGHTS}, got {thought!r}")
    if style not in STYLES:
        raise ConversionError("unknown_style", f"style must be one of {STYLES}, got {style!r}")
    if thought == "cot":
        return cot_text(solution)
    if thought == "eot" and eot_form == "relational" and style == "executor":
        return eot_reading(solution, question)[0]
    steps = checked_steps(solution)
    return pot_text(steps, question, style) if thought == "pot" else eot_text(steps, question, style)


def rationale_rows(problems: Iterable, thought: str = "pot") -> list[dict]:
    """{question, thought, rationale} rows for the problems whose gold solution converts (benchmarks, GPU check)."""
    rows = []
    for problem in problems:
        try:
            rows.append({"question": problem.question, "thought": thought,
                         "rationale": convert(problem.solution, thought, problem.question)})
        except ConversionError:
            pass
    return rows


# ---------------------------------------------------------------- the teacher

class AnnotationTeacher:
    """Teacher protocol over gold solutions: deterministic rewrites, not an LLM. Its EoT states the question's
    relations (`eot_form="relational"`) or spells the forward calculation as equations (`"forward"`)."""

    backend = "annotation"
    is_llm = False

    def __init__(self, style: str = "executor", eot_form: str = "relational"):
        if style not in STYLES:
            raise ValueError(f"annotation style must be one of {STYLES}, got {style!r}")
        if eot_form not in EOT_FORMS:
            raise ValueError(f"annotation eot_form must be one of {EOT_FORMS}, got {eot_form!r}")
        self.style, self.eot_form = style, eot_form
        self.model = f"gold-annotations-v{VERSION}" + ("" if style == "executor" else f"-{style}") + \
            ("" if eot_form == "relational" else "-forward-eot")
        self.usage = Usage()

    def settings(self) -> dict:
        return {}

    def prompt_version(self, thought: str) -> str:
        return hashlib.sha256(f"annotation-v{VERSION}-{self.style}-{self.eot_form}:{thought}".encode()).hexdigest()[:12]

    def describe(self, request: Request) -> dict:
        """What an EoT rationale states: its schema and the words of the question it came from (forward EoT:
        schema "forward"); {} for the other thought types or a solution that does not convert."""
        if request.thought != "eot" or not request.gold_solution:
            return {}
        if self.eot_form == "forward" or self.style != "executor":
            return {"schema": "forward", "cue": ""}
        try:
            reading = eot_reading(request.gold_solution, request.question)[1]
        except ConversionError:
            return {}
        return {"schema": reading.schema, "cue": reading.cue}

    def complete_one(self, request: Request) -> Completion:
        if request.sample_index > 0:
            return Completion(None, error=SAMPLE_ERROR)
        if not request.gold_solution:
            return Completion(None, error="no_gold_solution")
        try:
            return Completion(convert(request.gold_solution, request.thought, request.question, self.style,
                                      self.eot_form))
        except ConversionError as e:
            return Completion(None, error=str(e))

    def complete(self, requests: Iterable[Request]) -> Iterator[tuple[Request, Completion]]:
        for request in requests:
            completion = self.complete_one(request)
            self.usage.add(completion)
            yield request, completion
