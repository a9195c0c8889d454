"""From raw student outputs to answers, ETD combination strategies and the accuracy table.

How ETD combines its three thought types at test time is unknown (paper §4), so `combine` reports every candidate:
each trigger alone, fallback chains (next thought only when the previous one produced no answer) and a majority vote
(or the fallback chains alone, when only the thoughts they read were generated).
No strategy ever looks at the gold answer to choose; gold is only used to mark the chosen answer right or wrong.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from eotd.answers import Number, numbers_equal, to_json
from eotd.params import Params
from eotd.report import method_order
from eotd.protocol import (ACCURACY_COLUMNS, DEFAULT_FALLBACK, SEED_COLUMNS, THOUGHTS, VOTE,
                           fallback_strategy, split_label)
from eotd.verify import verify_many

PRODUCED = frozenset({"ok", "wrong_answer"})


def score(outputs: list[dict], timeout: float = 5.0, memory_mb: int = 512, progress: bool = False) -> list[dict]:
    """Each output verified as its thought type in one verify_many batch.

    Adds answer (to_json text or None), reason, detail, correct and produced (an answer came out, right or wrong).
    """
    verdicts = verify_many(
        ((o["thought"], o["output"], o["gold"]) for o in outputs),
        timeout=timeout, memory_mb=memory_mb, progress=progress,
    )
    return [
        {**o, "answer": to_json(v.answer), "reason": v.reason, "detail": v.detail,
         "correct": bool(v.correct), "produced": v.reason in PRODUCED}
        for o, v in zip(outputs, verdicts)
    ]


def _from_json(text: str | None) -> Number | None:
    """Inverse of to_json: '12' -> int, '3/4' -> Fraction, anything else -> float (to_json writes floats by repr)."""
    if text is None:
        return None
    if "/" in text:
        return Fraction(text)
    try:
        return int(text)
    except ValueError:
        return float(text)


def _row(key: tuple, gold, strategy: str, thought_used: str | None, answer, reason: str, correct: bool) -> dict:
    dataset, method, question_id = key
    return {"dataset": dataset, "method": method, "question_id": question_id, "strategy": strategy,
            "thought_used": thought_used, "answer": answer, "reason": reason, "correct": bool(correct), "gold": gold}


def _fallback(key, gold, by_thought: dict[str, dict], order: list[str]) -> dict:
    strategy = fallback_strategy(order)
    for thought in order:
        rec = by_thought.get(thought)
        if rec is not None and rec["produced"]:
            return _row(key, gold, strategy, thought, rec["answer"], rec["reason"], rec["correct"])
    return _row(key, gold, strategy, None, None, "none_produced", False)


def _vote(key, gold, by_thought: dict[str, dict], tie_order: list[str]) -> dict:
    rank = {t: i for i, t in enumerate(list(tie_order) + [k for k in THOUGHTS if k not in tie_order])}
    produced = sorted((t for t, r in by_thought.items() if r["produced"]), key=lambda t: (rank.get(t, len(rank)), t))
    # Groups are built in tie order, so each group's first member is its earliest thought and, with a stable max,
    # the earliest-created group wins a tie. numbers_equal is tolerant, hence compare with the group's first member.
    groups: list[list[str]] = []
    for thought in produced:
        value = _from_json(by_thought[thought]["answer"])
        for group in groups:
            if numbers_equal(value, _from_json(by_thought[group[0]]["answer"])):
                group.append(thought)
                break
        else:
            groups.append([thought])
    if not groups:
        return _row(key, gold, VOTE, None, None, "none_produced", False)
    winner = max(groups, key=len)
    rec = by_thought[winner[0]]
    return _row(key, gold, VOTE, "+".join(winner), rec["answer"], rec["reason"], rec["correct"])


def combine(
    scored: list[dict],
    fallback_orders: list[list[str]] = [DEFAULT_FALLBACK],
    vote_tie_order: list[str] = DEFAULT_FALLBACK,
) -> list[dict]:
    """Rows per (dataset, method, question_id) and strategy: each thought alone, then (only when more than one
    thought is present) each fallback order and "vote". Outputs generated only as a fallback needs them
    (students.predict_as_needed marks them "as_needed") give the fallback rows alone.
    Fields: strategy, thought_used, answer, reason, correct."""
    groups: dict[tuple, dict[str, dict]] = {}
    for rec in scored:
        by_thought = groups.setdefault((rec["dataset"], rec["method"], rec["question_id"]), {})
        if rec["thought"] in by_thought:
            raise ValueError(f"two {rec['thought']} outputs for {rec['dataset']}/{rec['method']}/{rec['question_id']}")
        by_thought[rec["thought"]] = rec
    rows = []
    for key, by_thought in groups.items():
        gold = next(iter(by_thought.values()))["gold"]
        if any(rec.get("as_needed") for rec in by_thought.values()):
            rows.extend(_fallback(key, gold, by_thought, order) for order in fallback_orders)
            continue
        for thought in sorted(by_thought, key=lambda t: (THOUGHTS.index(t) if t in THOUGHTS else len(THOUGHTS), t)):
            rec = by_thought[thought]
            rows.append(_row(key, gold, thought, thought, rec["answer"], rec["reason"], rec["correct"]))
        if len(by_thought) > 1:
            rows.extend(_fallback(key, gold, by_thought, order) for order in fallback_orders)
            rows.append(_vote(key, gold, by_thought, vote_tie_order))
    return rows


def wilson_ci(correct: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for correct/n (scipy); (nan, nan) when n is 0. Unlike a bootstrap it does not collapse
    to [0, 0] at 0/n: 0/200 still allows up to 1.9%."""
    if n == 0:
        return (float("nan"), float("nan"))
    ci = binomtest(int(correct), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return (float(ci.low), float(ci.high))


def _with_seeds(combined: list[dict]) -> pd.DataFrame:
    """The combined rows with each student label split into method and training seed ("PoTD@1" -> PoTD, 1)."""
    frame = pd.DataFrame(combined)
    parts = frame["method"].map(split_label)
    return frame.assign(method=parts.str[0], seed=parts.str[1])


def accuracy_by_seed(combined: list[dict]) -> pd.DataFrame:
    """Accuracy of every trained student (method x training seed) per dataset and strategy; rows of students
    without a seed (the untrained base) are left out."""
    rows = []
    if combined:
        frame = _with_seeds(combined)
        frame = frame[frame["seed"].notna()]
        for (dataset, method, strategy, seed), group in frame.groupby(["dataset", "method", "strategy", "seed"]):
            flags = group["correct"].astype(bool)
            rows.append({"dataset": dataset, "method": method, "strategy": strategy, "seed": int(seed),
                         "n": len(flags), "correct": int(flags.sum()), "accuracy": float(flags.mean())})
    return pd.DataFrame(rows, columns=SEED_COLUMNS)


def accuracy_table(combined: list[dict]) -> pd.DataFrame:
    """Accuracy with a 95% Wilson interval per dataset, method and strategy. A method trained with several seeds
    gets one row: n = its problems, correct = the mean over seeds of its correct answers (rounded to a whole problem),
    so accuracy is the seed mean and the interval is over the problems, not over problems x seeds."""
    rows = []
    if combined:
        frame = _with_seeds(combined).fillna({"seed": -1})
        for (dataset, method, strategy), group in frame.groupby(["dataset", "method", "strategy"], sort=True):
            per_seed = group.groupby("seed")["correct"].agg(["sum", "size"])
            n = int(per_seed["size"].max())
            correct = int(round(float(per_seed["sum"].mean())))
            low, high = wilson_ci(correct, n)
            rows.append({"dataset": dataset, "method": method, "strategy": strategy, "n": n,
                         "correct": correct, "accuracy": correct / n, "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows, columns=ACCURACY_COLUMNS)


COMPARISON_COLUMNS = ["dataset", "a", "b", "a_strategy", "b_strategy", "a_seeds", "b_seeds", "a_accuracy",
                      "b_accuracy", "a_only", "b_only", "p_value", "every_seed", "verdict"]


def paired_comparison(a: dict[int, dict[str, bool]], b: dict[int, dict[str, bool]], alpha: float = 0.05) -> dict:
    """Compare two methods on the same problems. `a` and `b`: seed -> {problem id: correct}. The paired test is an
    exact McNemar test (scipy's binomial test on the discordant problems) over stacked seed pairs (seed k of A with
    seed k of B, the shorter list repeated); "A beats B" needs p < alpha and every seed of A above every seed of B."""
    a_seeds, b_seeds = sorted(a), sorted(b)
    problems = sorted(set.intersection(*(set(v) for v in [*a.values(), *b.values()])))
    a_only = b_only = 0
    for k in range(max(len(a_seeds), len(b_seeds))):
        left, right = a[a_seeds[k % len(a_seeds)]], b[b_seeds[k % len(b_seeds)]]
        a_only += sum(left[q] and not right[q] for q in problems)
        b_only += sum(right[q] and not left[q] for q in problems)
    p_value = float(binomtest(a_only, a_only + b_only, 0.5).pvalue) if a_only + b_only else 1.0
    acc = {name: [sum(run[q] for q in problems) / max(len(problems), 1) for run in side.values()]
           for name, side in (("a", a), ("b", b))}
    a_above, b_above = min(acc["a"]) > max(acc["b"]), min(acc["b"]) > max(acc["a"])
    verdict = ("A beats B" if a_above else "B beats A" if b_above else None) if p_value < alpha else None
    return {"a_seeds": len(a_seeds), "b_seeds": len(b_seeds), "a_accuracy": float(np.mean(acc["a"])),
            "b_accuracy": float(np.mean(acc["b"])), "a_only": a_only, "b_only": b_only, "p_value": p_value,
            "every_seed": a_above or b_above, "verdict": verdict or "within training noise"}


def compare_methods(combined: list[dict], strategies: dict[str, str], alpha: float = 0.05) -> pd.DataFrame:
    """Every pair of methods (each at its strategy in `strategies`) on every dataset, by `paired_comparison`; a
    verdict names the winner ("PoTD beats base") or says "within training noise". A winner by the test whose side,
    or whose opponent, is a trained method with one training seed only is "ahead" ("ETD ahead of PoTD on one training
    seed"): its training noise is not measured, so that is not a claim that holds across seeds. The untrained base
    has no training seed and needs none."""
    if not combined:
        return pd.DataFrame(columns=COMPARISON_COLUMNS)
    frame = _with_seeds(combined).fillna({"seed": -1})
    frame = frame[frame["method"].map(strategies).eq(frame["strategy"])]
    runs: dict[tuple[str, str], dict[int, dict[str, bool]]] = {}
    for (dataset, method, seed), group in frame.groupby(["dataset", "method", "seed"]):
        runs.setdefault((dataset, method), {})[int(seed)] = dict(zip(group["question_id"], group["correct"].astype(bool)))
    rows = []
    for dataset in sorted({d for d, _ in runs}):
        present = [m for m in method_order(strategies) if (dataset, m) in runs]
        for i, a in enumerate(present):
            for b in present[i + 1:]:
                result = paired_comparison(runs[dataset, a], runs[dataset, b], alpha)
                one_seed = any(list(runs[dataset, m]) != [-1] and len(runs[dataset, m]) == 1 for m in (a, b))
                beats = " ahead of {} on one training seed" if one_seed else " beats {}"
                verdict = {"A beats B": a + beats.format(b), "B beats A": b + beats.format(a)}.get(
                    result["verdict"], result["verdict"])
                rows.append({"dataset": dataset, "a": a, "b": b, "a_strategy": strategies[a],
                             "b_strategy": strategies[b], **result, "verdict": verdict})
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def run(outputs: list[dict], p: Params, progress: bool = False) -> tuple[list[dict], list[dict], pd.DataFrame]:
    """Score raw outputs, combine them with the params' strategies and tabulate: (scored, combined, accuracy)."""
    scored = score(outputs, timeout=p.verify_timeout, memory_mb=p.verify_memory_mb, progress=progress)
    combined = combine(scored, p.fallback_orders, p.vote_tie_order)
    return scored, combined, accuracy_table(combined)


def no_answer_table(scored: list[dict]) -> pd.DataFrame:
    """Per method and thought type: outputs, how many gave no answer (and their share in %), then one column per
    reason an output gave none (a program that failed, a system without a unique solution, ...), as counts."""
    frame = pd.DataFrame(scored)
    if frame.empty:
        return pd.DataFrame(columns=["outputs", "without answer", "without answer %"])
    keys = ["method", "thought"]
    produced = frame["produced"].astype(bool)
    table = pd.DataFrame({"outputs": frame.groupby(keys).size(),
                          "without answer": (~produced).groupby([frame[k] for k in keys]).sum()})
    table["without answer %"] = (100 * table["without answer"] / table["outputs"]).round(1)
    failed = frame[~produced]
    if len(failed):
        reasons = failed.groupby([*keys, "reason"]).size().unstack(fill_value=0)
        table = table.join(reasons[sorted(reasons.columns, key=lambda r: -reasons[r].sum())]).fillna(0)
    table = table.astype({c: int for c in table.columns if c != "without answer %"})
    methods = [m for m in method_order(table.index.get_level_values("method"))]
    return table.sort_index(level="method", key=lambda level: level.map(methods.index), sort_remaining=True)


def examples(scored: list[dict], combined: list[dict], method: str, correct: bool, k: int = 3, seed: int = 0,
             strategy: str | None = None) -> list[dict]:
    """Up to k rows of `method` (any of its training seeds; optionally one strategy) that are right (correct=True)
    or wrong, sampled by seed, each with `output`: what the student wrote in the thought the strategy used."""
    pool = [r for r in combined if split_label(r["method"])[0] == method and r["correct"] == correct
            and (strategy is None or r["strategy"] == strategy)]
    picks = np.random.default_rng(seed).choice(len(pool), size=min(k, len(pool)), replace=False)
    text = {(o["dataset"], o["method"], o["question_id"], o["thought"]): o.get("raw_output", o["output"])
            for o in scored}
    chosen = []
    for row in (pool[i] for i in sorted(picks)):
        # the thought whose answer was taken; when none gave one, the first the strategy tried
        tried = (row["thought_used"].split("+") if row["thought_used"] else
                 row["strategy"].removeprefix("fallback:").split(">") + list(THOUGHTS))
        label = row["method"]
        thought = next((t for t in tried if (row["dataset"], label, row["question_id"], t) in text), None)
        output = text.get((row["dataset"], label, row["question_id"], thought))
        chosen.append({**row, "thought": thought, "output": output})
    return chosen
