"""The verifiers every stage uses: does a CoT, PoT or EoT rationale yield the gold answer?

CoT answers are read in-process; PoT programs run and EoT systems are solved in the sandbox pool (eotd.sandbox).
Neither function raises on a bad rationale: the Verdict says what went wrong.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from eotd import console
from eotd.answers import MAX_DIGITS, Number, extract_answer, numbers_equal, parse_number
from eotd.equations import inverts
from eotd.protocol import THOUGHTS
from eotd.sandbox import Job, Outcome, Sandbox, shared_sandbox


@dataclass(frozen=True)
class Verdict:
    correct: bool
    answer: Number | None
    reason: str  # "ok", "wrong_answer", "no_answer", "syntax_error", "runtime_error", "timeout", "memory", ...
    detail: str = ""


def _gold(gold) -> Number | None:
    return parse_number(gold) if isinstance(gold, str) else gold


def _judge(outcome: Outcome, gold) -> Verdict:
    if outcome.reason != "ok":
        return Verdict(False, outcome.answer, outcome.reason, outcome.detail)
    correct = numbers_equal(outcome.answer, _gold(gold))
    return Verdict(correct, outcome.answer, "ok" if correct else "wrong_answer", outcome.detail)


MAX_PROGRAM_CHARS = 1_000_000  # a PoT program / EoT system this long is no rationale (and would fill the worker pipe)
MAX_TIMEOUT = 600.0
MEMORY_MB_RANGE = (32, 65536)


def _read_cot(rationale: str) -> Outcome:
    extraction = extract_answer(rationale)
    if extraction.too_large:
        return Outcome(None, "too_large", f"the answer ({extraction.rule}) has more than {MAX_DIGITS} digits")
    if extraction.value is None:
        return Outcome(None, "no_answer", "no number in the rationale")
    return Outcome(extraction.value, "ok", f"rule={extraction.rule}")


def verify_many(
    items: Iterable[tuple[str, str, object]],
    *,
    timeout: float = 5.0,
    memory_mb: int = 512,
    sandbox: Sandbox | None = None,
    progress: bool = False,
) -> list[Verdict]:
    """Verify (thought, rationale, gold) tuples in parallel; verdicts come back in input order.

    A rationale that is not text (None, bytes) or a timeout / memory limit out of range is a caller's error and
    raises before anything runs; anything a model wrote gets a verdict.
    """
    _check_limits(timeout, memory_mb)
    items = list(items)
    for i, (_, rationale, _) in enumerate(items):
        if rationale is not None and not isinstance(rationale, str):
            raise TypeError(f"verify_many: item {i}: the rationale must be str (or None), got "
                            f"{type(rationale).__name__}; decode bytes first, e.g. .decode('utf-8')")
    outcomes: list[Outcome | None] = [None] * len(items)
    jobs, slots = [], []
    for i, (thought, rationale, _) in enumerate(items):
        if thought not in THOUGHTS:
            outcomes[i] = Outcome(None, "unknown_thought", f"the thought type must be one of {THOUGHTS}, got {thought!r}")
        elif rationale is None or not rationale.strip():
            outcomes[i] = Outcome(None, "no_answer", "empty rationale")
        elif thought != "cot" and len(rationale) > MAX_PROGRAM_CHARS:
            outcomes[i] = Outcome(None, "too_long", f"{len(rationale):,} characters (at most {MAX_PROGRAM_CHARS:,})")
        elif thought == "cot":
            outcomes[i] = _read_cot(rationale)
        else:
            jobs.append(Job(thought, rationale, timeout, memory_mb))
            slots.append(i)
    if jobs:
        done = (sandbox or shared_sandbox()).imap(jobs)
        # the bar comes first so that it is exhausted, and closed, before zip stops
        for outcome, i in zip(console.bar(iterable=done, total=len(jobs), desc="verify", disable=not progress), slots):
            outcomes[i] = outcome
    return [_judge(outcome, gold) for outcome, (_, _, gold) in zip(outcomes, items)]


def _check_limits(timeout, memory_mb) -> None:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= MAX_TIMEOUT:
        raise ValueError(f"verify_many: timeout must be seconds in (0, {MAX_TIMEOUT:g}], got {timeout!r}")
    low, high = MEMORY_MB_RANGE
    if isinstance(memory_mb, bool) or not isinstance(memory_mb, int) or not low <= memory_mb <= high:
        raise ValueError(f"verify_many: memory_mb must be a whole number of MiB in [{low}, {high}], got {memory_mb!r}")


def verify(thought: str, rationale: str, gold, **options) -> Verdict:
    """Verify one rationale of a thought type ("cot", "pot" or "eot") against the gold answer."""
    return verify_many([(thought, rationale, gold)], **options)[0]


def summarize(verified: list[dict]) -> dict:
    """Per thought type (rows with thought, rationale, correct and reason): how many rationales, how many verified,
    the reasons for each verdict, and how many verified EoT rationales the solver must invert (equations.inverts)
    rather than evaluate forward (0 for the other types)."""
    summary: dict[str, dict] = {}
    for row in verified:
        entry = summary.setdefault(row["thought"], {"total": 0, "verified": 0, "inverts": 0, "reasons": {}})
        entry["total"] += 1
        entry["verified"] += bool(row["correct"])
        entry["inverts"] += bool(row["correct"] and row["thought"] == "eot" and inverts(row["rationale"]))
        entry["reasons"][row["reason"]] = entry["reasons"].get(row["reason"], 0) + 1
    for entry in summary.values():
        entry["acceptance"] = entry["verified"] / entry["total"]
    return summary
