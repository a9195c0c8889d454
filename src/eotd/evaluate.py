"""From raw student outputs to answers, ETD combination strategies and the accuracy table.

How ETD combines its three thought types at test time is unknown (paper §4), so `combine` reports every candidate:
each trigger alone, fallback chains (next thought only when the previous one gave no answer) and a majority vote
(or the fallback chains alone, when only the thoughts they read were generated).
No strategy ever looks at the gold answer to choose; gold is only used to mark the chosen answer right or wrong.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from eotd.answers import from_json, numbers_equal, to_json
from eotd.equations import inverts
from eotd.params import Params
from eotd.protocol import (ACCURACY_COLUMNS, DEFAULT_FALLBACK, SEED_COLUMNS, THOUGHTS, VOTE,
                           fallback_strategy, method_order, split_label)
from eotd.relations import question_form
from eotd.stats import Runs, components, difference, holm, mean_interval
from eotd.verify import verify_many

ANSWERED = frozenset({"ok", "wrong_answer"})  # verdicts of an output that gave an answer, right or wrong


def score(outputs: list[dict], timeout: float = 5.0, memory_mb: int = 512, progress: bool = False) -> list[dict]:
    """Each output verified as its thought type, in one verify_many batch; an output that already carries its
    verdict (generation.predict_as_needed scores ETD's fallback rounds as it goes) keeps it: none is verified twice.

    Adds answer (to_json text or None), reason, detail, correct and answered (an answer came out, right or wrong).
    """
    todo = [o for o in outputs if "reason" not in o]
    verdicts = iter(verify_many(((o["thought"], o["output"], from_json(o["gold"])) for o in todo),
                                timeout=timeout, memory_mb=memory_mb, progress=progress))
    return [o if "reason" in o else _scored(o, next(verdicts)) for o in outputs]


def _scored(output: dict, v) -> dict:
    return {**output, "answer": to_json(v.answer), "reason": v.reason, "detail": v.detail,
            "correct": bool(v.correct), "answered": v.reason in ANSWERED}


def _row(key: tuple, gold, strategy: str, thought_used: str | None, answer, reason: str, correct: bool) -> dict:
    dataset, method, question_id = key
    return {"dataset": dataset, "method": method, "question_id": question_id, "strategy": strategy,
            "thought_used": thought_used, "answer": answer, "reason": reason, "correct": bool(correct), "gold": gold}


def _fallback(key, gold, by_thought: dict[str, dict], order: list[str]) -> dict:
    strategy = fallback_strategy(order)
    for thought in order:
        rec = by_thought.get(thought)
        if rec is not None and rec["answered"]:
            return _row(key, gold, strategy, thought, rec["answer"], rec["reason"], rec["correct"])
    return _row(key, gold, strategy, None, None, "none_answered", False)


def _vote(key, gold, by_thought: dict[str, dict], tie_order: list[str]) -> dict:
    rank = {t: i for i, t in enumerate(list(tie_order) + [k for k in THOUGHTS if k not in tie_order])}
    answered = sorted((t for t, r in by_thought.items() if r["answered"]), key=lambda t: (rank.get(t, len(rank)), t))
    # Groups are built in tie order, so each group's first member is its earliest thought and, with a stable max,
    # the earliest-created group wins a tie. numbers_equal is tolerant, hence compare with the group's first member.
    groups: list[list[str]] = []
    for thought in answered:
        value = from_json(by_thought[thought]["answer"])
        for group in groups:
            if numbers_equal(value, from_json(by_thought[group[0]]["answer"])):
                group.append(thought)
                break
        else:
            groups.append([thought])
    if not groups:
        return _row(key, gold, VOTE, None, None, "none_answered", False)
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
    (generation.predict_as_needed marks them "as_needed") give the fallback rows alone.
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


def _runs(group: pd.DataFrame) -> Runs:
    """One method's rows on one set at one strategy as seeds x problems (the problems every seed was scored on, by
    id); the untrained base (no seed) is one run without training noise."""
    table = group.pivot_table(index="seed", columns="question_id", values="correct", aggfunc="first").dropna(axis=1)
    return Runs(table.to_numpy(dtype=float), trained=bool(group["trained"].all()), ids=tuple(table.columns))


def _grouped_runs(combined: list[dict], keys: list[str], strategies: dict[str, str] | None = None) -> dict[tuple, Runs]:
    """Runs per `keys` group; with `strategies`, only each method's rows at its strategy."""
    frame = _with_seeds(combined)
    frame = frame.assign(trained=frame["seed"].notna(), seed=frame["seed"].fillna(0),
                         correct=frame["correct"].astype(float))
    if strategies is not None:
        frame = frame[frame["method"].map(strategies).eq(frame["strategy"])]
    return {key: _runs(group) for key, group in frame.groupby(keys, sort=True)}


def _paired_runs(combined: list[dict], strategies: dict[str, str]) -> dict[str, dict[str, Runs]]:
    """dataset -> method -> runs at the method's strategy, every method restricted to the problems all of them were
    scored on (paired)."""
    runs = _grouped_runs(combined, ["dataset", "method"], strategies)
    methods = method_order(strategies)
    out: dict[str, dict[str, Runs]] = {}
    for dataset in sorted({d for d, _ in runs}):
        present = [m for m in methods if (dataset, m) in runs]
        shared = set.intersection(*(set(runs[dataset, m].ids) for m in present)) if present else set()
        ids = [q for q in runs[dataset, present[0]].ids if q in shared] if present else []
        out[dataset] = {m: runs[dataset, m].on(ids) for m in present}
    return out


def accuracy_table(combined: list[dict]) -> pd.DataFrame:
    """Accuracy with a 95 % interval per dataset, method and strategy. A method trained with several seeds gets one
    row: n = its problems, correct = the exact mean over seeds of its correct answers, accuracy the seed mean, and an
    interval that counts seeds and problems as sampled (stats.mean_interval); one run keeps its Wilson interval."""
    rows = []
    if combined:
        for (dataset, method, strategy), runs in _grouped_runs(combined, ["dataset", "method", "strategy"]).items():
            low, high = mean_interval(runs)
            rows.append({"dataset": dataset, "method": method, "strategy": strategy, "n": runs.problems,
                         "correct": runs.flags.sum() / runs.seeds, "accuracy": runs.accuracy,
                         "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows, columns=ACCURACY_COLUMNS)


COMPARISON_COLUMNS = ["dataset", "form", "a", "b", "a_strategy", "b_strategy", "a_seeds", "b_seeds", "a_accuracy",
                      "b_accuracy", "diff", "diff_low", "diff_high", "df", "p_value", "p_holm", "verdict"]
NO_CLEAR_DIFFERENCE = "no clear difference"
# The sets whose problems are compared by question form too: inverse (the unknown is a start, a change, a part, a
# referent, a group count or a rate, where equations should help) and forward (a result or a total).
FORM_SETS = ("svamp", "asdiv", "multiarith")
FORM_ROWS = ("inverse", "forward")


def _verdict(a: str, b: str, result: dict, p_holm: float, alpha: float) -> str:
    if not p_holm < alpha:  # NaN too
        return NO_CLEAR_DIFFERENCE
    winner, loser = (a, b) if result["diff"] > 0 else (b, a)
    return f"{winner} beats {loser}" if result["measured"] else f"{winner} ahead of {loser} on one training seed"


def compare_methods(combined: list[dict], strategies: dict[str, str], alpha: float = 0.05) -> pd.DataFrame:
    """Every pair of methods (each at its strategy in `strategies`) on every dataset: the difference A - B in
    accuracy (seed means, fractions), its 95 % interval and p-value by stats.difference (training seeds and problems
    as sampled, paired on problems). The family is every pair on one dataset and form, untrained base included;
    p_holm is Holm-adjusted within it, and a verdict names a winner only when p_holm < alpha: "PoTD beats base", or
    "ETD ahead of PoTD on one training seed" when a side is a trained method with one seed (its training noise is
    unmeasured), else "no clear difference". Form "all" is every problem; on FORM_SETS, when the rows carry a
    question form (run's `questions`), "inverse" and "forward" compare the problems of that form alone."""
    rows = _comparisons(combined, strategies, alpha, "all")
    if combined and "form" in combined[0]:
        for form in FORM_ROWS:
            rows += _comparisons([r for r in combined if r["dataset"] in FORM_SETS and r["form"] == form],
                                 strategies, alpha, form)
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def _comparisons(combined: list[dict], strategies: dict[str, str], alpha: float, form: str) -> list[dict]:
    if not combined:
        return []
    rows = []
    for dataset, runs in _paired_runs(combined, strategies).items():
        present = list(runs)
        family = []
        for i, a in enumerate(present):
            for b in present[i + 1:]:
                left, right = runs[a], runs[b]
                family.append((a, b, left, right, difference(left, right)))
        for (a, b, left, right, result), p_holm in zip(family, holm([f[-1]["p_value"] for f in family])):
            rows.append({"dataset": dataset, "form": form, "a": a, "b": b, "a_strategy": strategies[a],
                         "b_strategy": strategies[b], "a_seeds": left.seeds, "b_seeds": right.seeds,
                         "a_accuracy": left.accuracy, "b_accuracy": right.accuracy,
                         **{k: result[k] for k in ("diff", "diff_low", "diff_high", "df")},
                         "p_value": result["p_value"], "p_holm": float(p_holm),
                         "verdict": _verdict(a, b, result, p_holm, alpha)})
    return rows


FORM_COLUMNS = ["dataset", "form", "method", "strategy", "seeds", "n", "accuracy"]


def accuracy_by_form(combined: list[dict], strategies: dict[str, str]) -> pd.DataFrame:
    """Each method's accuracy (mean over its seeds) at its strategy on the problems of each question form, per
    dataset: where relational equations should help (inverse) and where they should not (forward)."""
    rows = []
    if combined and "form" in combined[0]:
        for (dataset, form, method), runs in _grouped_runs(combined, ["dataset", "form", "method"], strategies).items():
            rows.append({"dataset": dataset, "form": form, "method": method, "strategy": strategies[method],
                         "seeds": runs.seeds, "n": runs.problems, "accuracy": runs.accuracy})
    return pd.DataFrame(rows, columns=FORM_COLUMNS)


def eot_inversions(scored: list[dict]) -> pd.DataFrame:
    """Per method, its EoT answers: how many invert a relation (equations.inverts: the student wrote the question's
    relation rather than a forward calculation), and the accuracy of those and of the rest."""
    rows = []
    eot = [o for o in scored if o["thought"] == "eot" and isinstance(o.get("output"), str)]
    for method in method_order(split_label(o["method"])[0] for o in eot):
        mine = [o for o in eot if split_label(o["method"])[0] == method]
        flags = [inverts(o["output"]) for o in mine]
        inv = [o["correct"] for o, f in zip(mine, flags) if f]
        fwd = [o["correct"] for o, f in zip(mine, flags) if not f]
        rows.append({"method": method, "answers": len(mine), "inverting": len(inv),
                     "inverting_share": len(inv) / len(mine) if mine else None,
                     "accuracy_inverting": sum(inv) / len(inv) if inv else None,
                     "accuracy_other": sum(fwd) / len(fwd) if fwd else None})
    return pd.DataFrame(rows)


DESIGN_COLUMNS = ["dataset", "seed_sd", "noise_sd", "pair_sd", "seeds", "problems", "half_width", "detectable"]
DESIGN_SEEDS = (2, 3, 5, 8, 10)


def design_table(combined: list[dict], strategies: dict[str, str]) -> pd.DataFrame:
    """The design helper: per dataset, the variance components of the trained methods with 2+ seeds (stats.components,
    each method at its strategy) and, for k seeds per method (2, 3, 5, 8, 10 and the run's own) and n problems (the
    run's and twice that), the expected half-width of the interval of a difference between two trained methods and
    the smallest difference found with 80 % power."""
    rows = []
    if combined:
        for dataset, runs in _paired_runs(combined, strategies).items():
            methods = list(runs.values())
            found = components(methods)
            if found is None:
                continue
            n = max(r.problems for r in methods)
            seeds = sorted(set(DESIGN_SEEDS) | {r.seeds for r in methods if r.trained and r.seeds > 1})
            for k in seeds:
                for problems in (n, 2 * n):
                    rows.append({"dataset": dataset, "seed_sd": found.seed, "noise_sd": found.noise,
                                 "pair_sd": found.pair, "seeds": k, "problems": problems,
                                 "half_width": found.half_width(k, problems),
                                 "detectable": found.detectable(k, problems)})
    return pd.DataFrame(rows, columns=DESIGN_COLUMNS)


def run(outputs: list[dict], p: Params, progress: bool = False,
        questions: dict[tuple[str, str], str] | None = None) -> tuple[list[dict], list[dict], pd.DataFrame]:
    """Score raw outputs, combine them with the params' strategies and tabulate: (scored, combined, accuracy). With
    `questions` ((dataset, question_id) -> text), every row carries its question's form (relations.question_form,
    from the text alone)."""
    scored = score(outputs, timeout=p.verify_timeout, memory_mb=p.verify_memory_mb, progress=progress)
    combined = combine(scored, p.fallback_orders, p.vote_tie_order)
    if questions is not None:
        forms = {key: question_form(text) for key, text in questions.items()}
        scored = [{**o, "form": forms.get((o["dataset"], o["question_id"]), "unknown")} for o in scored]
        combined = [{**r, "form": forms.get((r["dataset"], r["question_id"]), "unknown")} for r in combined]
    return scored, combined, accuracy_table(combined)


def no_answer_table(scored: list[dict]) -> pd.DataFrame:
    """Per method and thought type: outputs, how many gave no answer (and their share in %), then one column per
    reason an output gave none (a program that failed, a system without a unique solution, ...), as counts."""
    frame = pd.DataFrame(scored)
    if frame.empty:
        return pd.DataFrame(columns=["outputs", "without answer", "without answer %"])
    keys = ["method", "thought"]
    answered = frame["answered"].astype(bool)
    table = pd.DataFrame({"outputs": frame.groupby(keys).size(),
                          "without answer": (~answered).groupby([frame[k] for k in keys]).sum()})
    table["without answer %"] = (100 * table["without answer"] / table["outputs"]).round(1)
    failed = frame[~answered]
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
