"""Parse and solve an Equation-of-Thought (EoT) rationale with sympy, in-process.

The EoT format comes from XoT (``tengxiaoliu/XoT:src/prompts/eot.py``)::

    System of linear equations: (Do not simplify)
    % Assume Angela delivers x meals:
    meals = x
    % She needs to deliver 8 times as many packages as meals:
    packages = 8 * meals
    packages + meals = 27
    % How many meals does she deliver? The answer is meals:
    ans = meals

``solve_eot(text)`` never raises for bad input; it returns an ``EotResult`` whose ``reason`` is one of
``"ok"``, ``"syntax_error"``, ``"no_answer"``, ``"unsolvable"``, ``"underdetermined"``,
``"multiple_solutions"``, ``"non_numeric"``.

This is a pure function layer: it adds no timeouts, signals, threads or processes (the sandbox in
``eotd.sandbox`` runs it in a worker with a wall-clock limit). A pathological input such as
``x ** 99999 = 2`` can therefore take long; that is the sandbox's job.

Grammar and decisions (where XoT's own solver differs, this is stricter on purpose: it is a verifier):

* Blank lines, ``%`` comment lines (a ``%`` as the first non-blank character) and the header
  ``System of linear equations: ...`` are skipped. A trailing ``;`` or ``.`` on a line is ignored.
* Every other line must contain ``=``. A line without ``=``, with ``==``, with any character outside
  names, numbers, ``+ - * / ^ ** ( ) , % $ × ÷ ·`` and whitespace (so ``<``, ``>``, ``!=``, ``:``, quotes,
  brackets ...), with a Python keyword (``if``, ``else``, ``for``, ``and``, ``lambda`` ...), or that sympy
  cannot parse gives ``"syntax_error"`` with the line in ``detail``. (XoT silently drops lines without
  ``=``, which turns ``total_earnings > total_cost`` into a wrong answer.)
* A line with several ``=`` is a *chain*: ``a = b = c`` means ``a == b`` and ``b == c`` (XoT keeps only
  the first pair; the chain is the literal meaning and catches ``x = 3 = 4``).
* ``name = x`` where ``x`` is a bare single letter *declares* ``name`` as a free unknown. If the letter
  occurs on no other line (except other declarations with the same letter) the line adds no equation, so
  ``a = x`` and ``b = x`` do not force ``a == b``. If the letter is also used elsewhere (``packages = 8 * x``)
  the declarations are kept as ordinary equations ``name == x`` (what XoT's sympy does).
* Every name is a plain ``sympy.Symbol`` (``E``, ``I``, ``N``, ``S``, ``Q``, ``pi``, ``beta``, ``gamma``
  are unknowns, not sympy constants or functions). Only these names followed by ``(`` are functions:
  ``sqrt``, ``floor``, ``ceiling``/``ceil``, ``Abs``/``abs``, ``Min``/``min``, ``Max``/``max`` and ``round``
  (``round(v)`` / ``round(v, n)`` round half up, as grade-school rounding does).
* Numbers are exact: ``0.1`` is ``1/10``, ``1e5`` is ``100000``, ``1,200`` is ``1200`` (a comma followed by
  exactly three digits inside a number is a thousands separator, so write ``max(1, 200)`` with a space),
  ``$`` is dropped, ``N%`` (also ``name%`` and ``(...)%``) is ``(N/100)``; ``%`` as modulo (``a % b``) is a
  syntax error.
* ``^`` is power; ``×``, ``·``, ``⋅`` are ``*``; ``÷`` is ``/``; ``−`` and ``–`` are ``-``.
* Implicit products get a ``*``: ``3x``, ``2(x+1)``, ``)(``, ``)name``, ``(a+b)2``, ``name(...)`` for a name
  that is not one of the functions above. Names with digits (``day2``) and scientific notation stay intact.
  Two adjacent names or numbers (``packages meals``, ``3 4``) are a syntax error.

Solving:

* No ``ans`` name anywhere -> ``"no_answer"``.
* Equations ``lhs - rhs``. One that is a non-zero constant (``distance = distance + 15``) -> ``"unsolvable"``
  with the line; one that is identically zero is dropped. Division by zero -> ``"unsolvable"``.
* Unit propagation first: an equation with one unknown that is linear in it (or whose numerator is, with
  the denominator non-zero there: ``total / boxes = 4``) fixes that unknown, which is substituted
  everywhere. Chains like ``a = 5``, ``b = 2 * a``, ``c = b / a`` never reach a solver, and ``total / count``
  becomes linear once ``count`` is known. The exact solution set is unchanged. The remaining system goes to
  ``sympy.linsolve`` when it is linear, else to ``sympy.solve(..., dict=True)``. No ``simplify`` anywhere.
* The whole system must be consistent (an empty solution set anywhere -> ``"unsolvable"``), as in XoT.
* ``ans`` still depending on free unknowns -> ``"underdetermined"`` (``detail`` names them).
* Several solutions: the distinct values of ``ans`` are collected. None real -> ``"non_numeric"``. Several
  real values -> only the positive ones are kept (grade-school quantities are positive); exactly one left ->
  ``"ok"``, else ``"multiple_solutions"``. Non-real or infinite values -> ``"non_numeric"``.
* ``answer``: ``int`` for integers, ``Fraction`` for other rationals, ``float`` for sympy Floats and for
  irrational real values (``sqrt(2)``).
"""
from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction

import sympy
from sympy.parsing.sympy_parser import parse_expr, standard_transformations
from sympy.solvers.solveset import NonlinearError

from eotd.answers import Number, normalize

REASONS = ("ok", "syntax_error", "no_answer", "unsolvable", "underdetermined", "multiple_solutions", "non_numeric")
ANSWER_NAME = "ans"


@dataclass(frozen=True)
class EotResult:
    """``answer`` is set only when ``reason == "ok"``; ``detail`` explains any other reason."""

    answer: Number | None
    reason: str
    detail: str = ""


class _SyntaxProblem(Exception):
    pass


def _round(value, digits=0):
    scale = sympy.Integer(10) ** digits
    return sympy.floor(value * scale + sympy.Rational(1, 2)) / scale


_FUNCTIONS = {
    "sqrt": sympy.sqrt,
    "floor": sympy.floor,
    "ceiling": sympy.ceiling,
    "ceil": sympy.ceiling,
    "Abs": sympy.Abs,
    "abs": sympy.Abs,
    "Min": sympy.Min,
    "min": sympy.Min,
    "Max": sympy.Max,
    "max": sympy.Max,
    "round": _round,
}
_FN_PREFIX = "__fn_"
_FN_LOCALS = {_FN_PREFIX + name: fn for name, fn in _FUNCTIONS.items()}

_HEADER_RE = re.compile(r"^system\s+of\s+(linear\s+)?equations\b", re.IGNORECASE)
_UNICODE = str.maketrans({"×": "*", "·": "*", "⋅": "*", "÷": "/", "−": "-", "–": "-", "$": None})
_TOKEN_RE = re.compile(
    r"(?P<ws>\s+)"
    r"|(?P<num>(?:(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[^\W\d]\w*)"
    r"|(?P<op>\*\*|[-+*/^(),%])"
)
_SINGLE_LETTER_RE = re.compile(r"[A-Za-z]")
_MAX_EXPONENT = 300  # 1e400 is a typo, not a quantity; also keeps Fraction(Decimal) cheap
_BAD_CONSTANTS = (sympy.S.ComplexInfinity, sympy.S.NaN, sympy.S.Infinity, sympy.S.NegativeInfinity)


def _number_text(text: str) -> str:
    try:
        value = Decimal(text.replace(",", ""))
    except InvalidOperation as exc:  # pragma: no cover - the token regex only lets decimals through
        raise _SyntaxProblem(f"bad number {text!r}") from exc
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int) or abs(exponent) > _MAX_EXPONENT or value.adjusted() > _MAX_EXPONENT:
        raise _SyntaxProblem(f"number out of range {text!r}")
    frac = Fraction(value)
    return str(frac.numerator) if frac.denominator == 1 else f"({frac.numerator}/{frac.denominator})"


def _translate_side(text: str, names: list[str]) -> str:
    """One side of an equation -> Python/sympy source text; appends the unknowns' names to ``names``."""
    tokens: list[tuple[str, str]] = []  # (kind, text) without whitespace; kind in num/name/fn/op
    pos = 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            raise _SyntaxProblem(f"unexpected character {text[pos]!r}")
        pos = match.end()
        kind = match.lastgroup
        if kind != "ws":
            tokens.append((kind, match.group()))
    if not tokens:
        raise _SyntaxProblem("empty side of an equation")

    out: list[tuple[str, str]] = []
    for index, (kind, tok) in enumerate(tokens):
        if kind == "name":
            if keyword.iskeyword(tok) or keyword.issoftkeyword(tok) or tok.startswith("__"):
                raise _SyntaxProblem(f"{tok!r} is not an equation name")
            follows_paren = index + 1 < len(tokens) and tokens[index + 1][1] == "("
            if tok in _FUNCTIONS and follows_paren:
                kind, tok = "fn", _FN_PREFIX + tok
            else:
                names.append(tok)
        elif kind == "num":
            tok = _number_text(tok)
        elif tok == "^":
            tok = "**"
        elif tok == "%":
            nxt = tokens[index + 1] if index + 1 < len(tokens) else None
            if nxt is not None and (nxt[0] in ("num", "name") or nxt[1] in ("(", "%")):
                raise _SyntaxProblem("'%' is percent, not modulo")
            _apply_percent(out)
            continue
        if out:
            prev_kind, prev_tok = out[-1]
            prev_atom = prev_kind in ("num", "name") or prev_tok == ")"
            if prev_atom and (kind in ("name", "fn") or tok == "(") and not (prev_kind == "name" and kind == "name"):
                out.append(("op", "*"))
            elif prev_tok == ")" and kind == "num":
                out.append(("op", "*"))
        out.append((kind, tok))
    return " ".join(tok for _, tok in out)


def _apply_percent(out: list[tuple[str, str]]) -> None:
    """Postfix ``%`` on the atom just emitted: ``20%`` -> ``(20/100)``, ``(a+b)%`` -> ``((a+b)/100)``."""
    if not out:
        raise _SyntaxProblem("'%' with nothing before it")
    kind, tok = out[-1]
    if kind in ("num", "name"):
        start = len(out) - 1
    elif tok == ")":
        depth, start = 0, len(out) - 1
        while start >= 0:
            depth += {")": 1, "(": -1}.get(out[start][1], 0)
            if depth == 0:
                break
            start -= 1
        if start < 0:
            raise _SyntaxProblem("unbalanced ')' before '%'")
        if start > 0 and out[start - 1][0] == "fn":
            start -= 1
    else:
        raise _SyntaxProblem(f"'%' after {tok!r}")
    out.insert(start, ("op", "("))
    out.extend((("op", "/"), ("num", "100"), ("op", ")")))


@dataclass
class _Line:
    number: int  # 1-based line number in the input
    text: str
    sides: list[str]  # translated source of each side
    names: list[str]  # identifiers used as unknowns on this line
    declares: tuple[str, str] | None  # (name, letter) for a `name = x` line


def _read_lines(text: str) -> list[_Line]:
    lines: list[_Line] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("%") or _HEADER_RE.match(line):
            continue
        body = line.rstrip(";.").strip()
        try:
            if "==" in body:
                raise _SyntaxProblem("'==' is a comparison, not an equation")
            if "=" not in body:
                raise _SyntaxProblem("no '=' on a non-comment line")
            parts = body.translate(_UNICODE).split("=")
            names: list[str] = []
            sides = [_translate_side(part, names) for part in parts]
        except _SyntaxProblem as exc:
            raise _SyntaxProblem(f"line {number}: {line!r}: {exc}") from None
        declares = None
        if len(parts) == 2:
            left, right = parts[0].strip(), parts[1].strip().translate(_UNICODE)
            if _SINGLE_LETTER_RE.fullmatch(right) and re.fullmatch(r"[^\W\d]\w*", left):
                declares = (left, right)
        lines.append(_Line(number, line, sides, names, declares))
    return lines


def _parse(lines: list[_Line]) -> tuple[list[tuple[_Line, sympy.Expr]], list[str]]:
    """Equations as ``expr == 0`` with their lines, and the names of the unknowns declared by ``name = x``."""
    letter_uses: dict[str, int] = {}
    for line in lines:
        used = line.names if line.declares is None else line.declares[:1]
        for name in used:
            letter_uses[name] = letter_uses.get(name, 0) + 1
    pure_declared: list[str] = []
    equations: list[tuple[_Line, str]] = []
    for line in lines:
        if line.declares is not None and not letter_uses.get(line.declares[1]):
            pure_declared.append(line.declares[0])
            continue
        for left, right in zip(line.sides, line.sides[1:]):
            equations.append((line, f"({left}) - ({right})"))

    local_dict: dict[str, object] = dict(_FN_LOCALS)
    for line in lines:
        for name in line.names:
            if name not in local_dict:
                local_dict[name] = sympy.Symbol(name)
    for name in pure_declared:
        local_dict.setdefault(name, sympy.Symbol(name))

    exprs = None
    if equations:
        try:  # one parse for the whole system; on any trouble re-parse line by line to name the culprit
            source = "[" + ", ".join(src for _, src in equations) + "]"
            parsed = parse_expr(source, local_dict=local_dict, transformations=standard_transformations)
            if isinstance(parsed, list) and len(parsed) == len(equations) and all(
                isinstance(e, sympy.Expr) for e in parsed
            ):
                exprs = parsed
        except Exception:  # noqa: BLE001 - any parse failure is reported per line below
            exprs = None
    if exprs is None:
        exprs = []
        for line, src in equations:
            try:
                expr = parse_expr(src, local_dict=local_dict, transformations=standard_transformations)
            except Exception as exc:  # noqa: BLE001 - sympy raises many types for bad input
                raise _SyntaxProblem(f"line {line.number}: {line.text!r}: {type(exc).__name__}: {exc}") from None
            if not isinstance(expr, sympy.Expr):
                raise _SyntaxProblem(f"line {line.number}: {line.text!r}: not an arithmetic expression")
            exprs.append(expr)
    return [(line, expr) for (line, _), expr in zip(equations, exprs)], pure_declared


def _to_number(value: sympy.Expr) -> Number | None:
    """An exact/real sympy number -> int | Fraction | float; None when it is not a finite real number."""
    if value.is_Integer:
        return int(value)
    if value.is_Rational:
        return normalize(Fraction(int(value.p), int(value.q)))
    if value.is_Float:
        return float(value) if value.is_finite else None
    if value.has(*_BAD_CONSTANTS):
        return None
    if value.is_real:
        return float(value.evalf())
    if value.is_real is None:
        number = complex(value.evalf())
        if abs(number.imag) <= 1e-12 * max(1.0, abs(number.real)):
            return float(number.real)
    return None


def _linear_root(expr: sympy.Expr, symbol: sympy.Symbol) -> sympy.Expr | None:
    """The root of ``expr`` when it is ``a * symbol + b`` with numbers ``a != 0`` and ``b``, else None."""
    constant, term = expr.as_independent(symbol, as_Add=True)
    slope, rest = term.as_independent(symbol, as_Add=False)
    if rest == symbol:  # the common case, without a (slow) derivative
        if not slope.is_number or slope.is_zero is not False:
            return None
        value = -constant / slope
    else:
        slope = expr.diff(symbol)
        if slope.free_symbols or not slope.is_number or slope.is_zero is not False:
            return None
        value = -expr.xreplace({symbol: sympy.S.Zero}) / slope
    return None if value.has(*_BAD_CONSTANTS) else value


def _propagate(exprs: list[sympy.Expr]) -> tuple[dict, list[sympy.Expr]]:
    """Fix every unknown that an equation with that single unknown determines linearly; substitute it."""
    known: dict = {}
    exprs = list(exprs)
    progress = True
    while progress:
        progress = False
        for index, expr in enumerate(exprs):
            symbols = expr.free_symbols
            if len(symbols) != 1:
                continue
            (symbol,) = symbols
            value = _linear_root(expr, symbol)
            if value is None:  # `c / boxes = 4`: the numerator may still be linear in the unknown
                numerator, denominator = expr.as_numer_denom()
                if denominator.free_symbols:
                    value = _linear_root(numerator, symbol)
                    if value is not None and denominator.xreplace({symbol: value}).is_zero is not False:
                        value = None
            if value is None:
                continue
            known[symbol] = value
            exprs = [e.xreplace({symbol: value}) for e in exprs]
            progress = True
            break
    return known, exprs


def solve_eot(text: str) -> EotResult:
    """Solve an EoT rationale for ``ans``; never raises for bad input (see the module docstring)."""
    if not isinstance(text, str):
        return EotResult(None, "syntax_error", f"not text: {type(text).__name__}")
    try:
        lines = _read_lines(text)
        equations, declared = _parse(lines)
    except _SyntaxProblem as exc:
        return EotResult(None, "syntax_error", str(exc))
    except Exception as exc:  # noqa: BLE001 - last resort: never raise for bad input
        return EotResult(None, "syntax_error", f"{type(exc).__name__}: {exc}")
    try:
        return _solve(equations, declared)
    except Exception as exc:  # noqa: BLE001 - sympy raises many types for odd systems
        return EotResult(None, "unsolvable", f"sympy failed: {type(exc).__name__}: {exc}")


def _solve(equations: list[tuple[_Line, sympy.Expr]], declared: list[str]) -> EotResult:
    ans = sympy.Symbol(ANSWER_NAME)
    all_symbols: set = {sympy.Symbol(name) for name in declared}
    exprs: list[sympy.Expr] = []
    for line, expr in equations:
        if expr.has(*_BAD_CONSTANTS):
            return EotResult(None, "unsolvable", f"line {line.number}: {line.text!r}: division by zero or infinity")
        if expr.is_number:
            if expr.is_zero is False or (expr.is_zero is None and abs(complex(expr.evalf())) > 1e-12):
                return EotResult(None, "unsolvable", f"line {line.number}: {line.text!r}: reduces to {expr} = 0")
            continue
        all_symbols |= expr.free_symbols
        exprs.append(expr)
    if ans not in all_symbols:
        return EotResult(None, "no_answer", f"no '{ANSWER_NAME} = ...' line")

    known, rest = _propagate(exprs)
    remaining = []
    for expr in rest:
        if expr.is_number:
            if expr.has(*_BAD_CONSTANTS) or expr.is_zero is False:
                return EotResult(None, "unsolvable", f"inconsistent equations: {expr} = 0 after substitution")
            if expr.is_zero is None and abs(complex(expr.evalf())) > 1e-12:
                return EotResult(None, "unsolvable", f"inconsistent equations: {expr} = 0 after substitution")
            continue
        remaining.append(expr)

    if ans in known:
        candidates = [known[ans]]
    else:
        candidates = None
    if remaining:
        unknowns = sorted(set().union(*(e.free_symbols for e in remaining)), key=lambda s: (s != ans, s.name))
        try:
            solution_set = sympy.linsolve(remaining, unknowns)
        except NonlinearError:
            solution_set = None
        if solution_set is not None:
            if solution_set is sympy.S.EmptySet or len(solution_set) == 0:
                return EotResult(None, "unsolvable", "the linear equations are inconsistent")
            (solution,) = tuple(solution_set)
            values = dict(zip(unknowns, solution))
            if candidates is None:
                candidates = [values.get(ans, ans)]
        else:
            solutions = sympy.solve(remaining, unknowns, dict=True)
            if not solutions:
                return EotResult(None, "unsolvable", "sympy.solve found no solution")
            if candidates is None:
                candidates = [sol.get(ans, ans) for sol in solutions]
    if candidates is None:
        candidates = [ans]  # `ans` only declared, never constrained
    return _pick(candidates)


def _pick(candidates: list[sympy.Expr]) -> EotResult:
    symbolic = [c for c in candidates if c.free_symbols]
    if symbolic:
        free = sorted({s.name for c in symbolic for s in c.free_symbols})
        if free == [ANSWER_NAME]:
            return EotResult(None, "underdetermined", f"the equations do not determine {ANSWER_NAME}")
        return EotResult(
            None, "underdetermined", f"{ANSWER_NAME} = {symbolic[0]} depends on free unknowns: {', '.join(free)}"
        )
    values: list[Number] = []
    rejected: list[str] = []
    for candidate in candidates:
        number = _to_number(candidate)
        if number is None:
            rejected.append(str(candidate))
        elif not any(number == v and type(number) is type(v) for v in values):
            values.append(number)
    if not values:
        return EotResult(None, "non_numeric", f"{ANSWER_NAME} = {', '.join(rejected)}")
    if len(values) == 1:
        return EotResult(values[0], "ok", "" if not rejected else f"dropped non-real {', '.join(rejected)}")
    positive = [v for v in values if v > 0]
    if len(positive) == 1:
        return EotResult(positive[0], "ok", f"kept the positive value of {_show(values)}")
    return EotResult(None, "multiple_solutions", f"{ANSWER_NAME} in {_show(values)}")


def _show(values: list[Number]) -> str:
    return "{" + ", ".join(str(v) for v in values) + "}"


_NAME_RE = re.compile(r"[^\W\d]\w*")


def inverts(text: str) -> bool:
    """True when the solver must invert the system: no order of its equations evaluates every unknown forward, where
    a forward step is an equation with one side a lone unknown and every name of the other side already known (either
    side: `43 - 22 = left` is forward; `name = x` declares). `left + 22 = 43` inverts. False for a forward
    calculation spelled as equations, and for text that does not parse (its verifier says why)."""
    try:
        lines = _read_lines(text)
    except _SyntaxProblem:
        return False
    pairs = []
    for line in lines:
        for left, right in zip(line.sides, line.sides[1:]):
            pairs.append((_side_names(left), _side_names(right), left.strip(), right.strip()))
    names = {name for left, right, _, _ in pairs for name in left | right}
    known: set[str] = set()
    pending = list(pairs)
    progress = True
    while pending and progress:
        progress = False
        for pair in list(pending):
            left, right, left_text, right_text = pair
            for lone, lone_text, other in ((left, left_text, right), (right, right_text, left)):
                if _NAME_RE.fullmatch(lone_text) and other <= known:
                    known |= lone
                    pending.remove(pair)
                    progress = True
                    break
            else:
                if left | right <= known:
                    pending.remove(pair)
                    progress = True
    return bool(pending) or not names <= known


def _side_names(side: str) -> set[str]:
    return {name for name in _NAME_RE.findall(side) if not name.startswith(_FN_PREFIX)}
