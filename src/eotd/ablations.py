"""Ablations: which thought mixes, how much data, how many rationales per question the students need, and what the
rationale style does (executor-style programs/systems vs the same with each gold sentence as a comment line).

Each variant is a student trained by `students.fit` (so it is cached and resumable like the main ones) and evaluated
like `04`; a variant whose training data equals a main method's (e.g. the mix {cot} = CoTD, 100% of ETD) reuses it.
"""
from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass

import pandas as pd

from eotd import evalsets, evaluate, generation, protocol, students
from eotd.data import Problem
from eotd.params import Params

COLUMNS = ["ablation", "variant", "method", "train_examples"] + [c for c in protocol.ACCURACY_COLUMNS if c != "method"]


@dataclass(frozen=True)
class Variant:
    ablation: str  # "thought_mix" | "data_size" | "rationales_per_question" | "rationale_style"
    variant: str  # "cot+pot", "ETD 25%", "k=1"
    label: str  # the student's name (a main method's when the data is the same)
    thoughts: tuple[str, ...]
    rows: tuple[dict, ...]


def _method_for(thoughts: tuple[str, ...]) -> str | None:
    return next((m for m, t in protocol.METHODS.items() if t == thoughts), None)


def subsample(rows: list[dict], fraction: float, seed: int) -> list[dict]:
    """A seeded fraction of the questions, each with all its rationales (so the thought mix is unchanged)."""
    questions = sorted({r["question_id"] for r in rows})
    keep = set(random.Random(seed).sample(questions, max(1, round(fraction * len(questions)))))
    return [r for r in rows if r["question_id"] in keep]


def first_k(rows: list[dict], k: int) -> list[dict]:
    """At most k rationales per question and thought type (the lowest sample indices)."""
    return [r for r in rows if r["sample_index"] < k]


def commented_rows(p: Params, rows: list[dict]) -> list[dict]:
    """The same questions' rationales in the annotation teacher's commented style (each step preceded by its gold
    sentence, computed numbers included), verified like 02; only questions whose commented rationale verifies."""
    from eotd import synthesis, verification
    from eotd.teachers.annotation import AnnotationTeacher

    wanted = {(r["question_id"], r["thought"]) for r in rows}
    problems = [pr for pr in synthesis.training_problems(p) if any((pr.id, t) in wanted for t in protocol.THOUGHTS)]
    teacher = AnnotationTeacher("commented")
    requests = [rq for rq in synthesis.requests_for(problems, sorted({r["thought"] for r in rows}), 1)
                if (rq.question_id, rq.thought) in wanted]
    completions = [c for _, c in teacher.complete(requests)]
    built = synthesis.build_rows(problems, requests, completions, teacher)
    return verification.kept_rows(verification.verify_rows(built, p, progress=False))


def variants(p: Params, splits) -> list[Variant]:
    etd = list(splits["etd"])
    out = []
    if p.ablation_thought_mixes:
        for mix in protocol.THOUGHT_MIXES:
            rows = tuple(r for r in etd if r["thought"] in mix)
            method = _method_for(mix)
            same = method is not None and tuple(students.training_rows(p, splits, method)) == rows
            label = students.main_label(p, method) if same else "mix:" + "+".join(mix)
            out.append(Variant("thought_mix", "+".join(mix), label, mix, rows))
    for method in p.ablation_size_methods:
        rows = students.training_rows(p, splits, method)
        for fraction in p.ablation_sizes:
            label = students.main_label(p, method) if fraction == 1 else f"{method}:{fraction:.0%}"
            out.append(Variant("data_size", f"{method} {fraction:.0%}", label, protocol.METHODS[method],
                               tuple(subsample(rows, fraction, p.seed) if fraction < 1 else rows)))
    for method in p.ablation_style_methods:  # the main student vs one trained on the commented rewrite
        rows = students.training_rows(p, splits, method)
        commented = commented_rows(p, rows)
        kept = {r["question_id"] for r in commented}
        same = [r for r in rows if r["question_id"] in kept]  # the same questions on both sides
        label = students.main_label(p, method) if len(same) == len(rows) else f"{method}:executor"
        out.append(Variant("rationale_style", f"{method} executor", label, protocol.METHODS[method], tuple(same)))
        out.append(Variant("rationale_style", f"{method} commented", f"{method}:commented", protocol.METHODS[method],
                           tuple(commented)))
    samples = max((r["sample_index"] for r in etd), default=0) + 1
    if samples > 1:
        for k in sorted({1, samples}):
            label = students.main_label(p, "ETD") if k == samples else f"ETD:k={k}"
            out.append(Variant("rationales_per_question", f"k={k}", label,
                               protocol.METHODS["ETD"], tuple(first_k(etd, k))))
    return out


def eval_sets(p: Params, train: list[Problem]) -> evalsets.EvalSets:
    """The (smaller) evaluation sets of the ablations, decontaminated like the main evaluation."""
    return evalsets.load(dataclasses.replace(p, eval_sets=p.ablation_eval_sets, eval_limit=p.ablation_eval_limit), train)


def run(p: Params, splits, sets: dict[str, list[Problem]], progress: bool = True,
        grid: list[Variant] | None = None, max_new_tokens: dict[str, int] | None = None) -> tuple[pd.DataFrame, dict]:
    """Train and evaluate every variant (of `grid`, default variants(p, splits)); returns the tidy accuracy table
    and the training results by label."""
    tables, trained = [], {}
    for v in grid if grid is not None else variants(p, splits):
        if v.label not in trained:
            trained[v.label] = students.fit(p, v.label, list(v.rows), progress)
        # the main budget (so the main students' generations are reused), raised where this variant's own
        # rationales are longer (the commented style)
        own = generation.token_budget(p, {"etd": list(v.rows)})
        budget = {t: max((max_new_tokens or {}).get(t, 0), own[t]) for t in v.thoughts}
        outputs = generation.predict(p, v.label, str(trained[v.label].path), sets, v.thoughts, progress=progress,
                                   max_new_tokens=budget)
        _, _, table = evaluate.run(outputs, p)
        tables.append(table.assign(ablation=v.ablation, variant=v.variant, train_examples=len(v.rows)))
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=COLUMNS)
    return table[COLUMNS], trained
