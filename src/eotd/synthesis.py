"""Data synthesis: a teacher writes CoT/PoT/EoT rationales for training questions, each is verified, failures dropped.

Every completion goes through the on-disk cache, so a re-run makes no new teacher call and a killed run resumes where
it stopped. `python -m eotd.synthesis params/X.yaml` runs the stage outside a notebook.
"""
from __future__ import annotations

import argparse
import random
from dataclasses import dataclass
from pathlib import Path

import datasets

from eotd import console, data, paths, records
from eotd.answers import to_json
from eotd.params import Params
from eotd.params import load as load_params
from eotd.teachers import Request, Teacher, build
from eotd.teachers.base import Completion
from eotd.teachers.cache import CompletionCache, cache_key
from eotd.verify import verify_many

COLUMNS = ("question_id", "dataset", "question", "gold", "thought", "rationale", "teacher", "teacher_is_llm",
           "prompt_hash", "sample_index", "answer", "correct", "reason")


def training_problems(p: Params) -> list[data.Problem]:
    """The training questions: GSM-Symbolic's training templates/instances, or a seeded sample of a loaded set, plus
    the benchmark training folds of p.train_extra (evalsets.training_fold)."""
    from eotd import evalsets

    if p.train_dataset == "gsm_symbolic":
        n = p.train_questions or 1000
        problems = list(data.load_gsm_symbolic(n, p.seed, "train", p.gsm_symbolic_split, p.gsm_symbolic_test_fraction))
    else:
        problems = list(data.load(p.train_dataset, p.data_dir))
        if p.train_questions and p.train_questions < len(problems):
            problems = sorted(random.Random(p.seed).sample(problems, p.train_questions), key=problems.index)
    for name, count in p.train_extra.items():
        problems += evalsets.training_fold(p, name, count)
    return problems


def requests_for(problems: list[data.Problem], thoughts: list[str], samples: int) -> list[Request]:
    return [Request(pr.id, pr.question, t, k, pr.solution) for pr in problems for t in thoughts for k in range(samples)]


def teacher_label(teacher: Teacher) -> str:
    return f"{teacher.backend}:{teacher.model}"


def generate(teacher: Teacher, requests: list[Request], cache: CompletionCache, progress: bool = True) -> list[Completion]:
    """A completion per request (in order): cached ones are reused, the rest asked for and cached as they arrive."""
    keys = [cache_key(teacher.backend, teacher.model, teacher.prompt_version(r.thought), teacher.settings(), r)
            for r in requests]
    done: dict[int, Completion] = {}
    for i, key in enumerate(keys):
        if (hit := cache.get(key)) is not None:
            done[i] = hit
    missing = [i for i in range(len(requests)) if i not in done]
    index = {id(requests[i]): i for i in missing}
    bar = console.bar(total=len(requests), initial=len(done), desc=f"teacher {teacher_label(teacher)}",
                      disable=not progress)
    try:
        for request, completion in teacher.complete(requests[i] for i in missing):
            i = index[id(request)]
            cache.put(keys[i], request, completion)
            done[i] = completion
            bar.update()
            u = teacher.usage
            bar.set_postfix(new_calls=u.requests, tokens=u.input_tokens + u.output_tokens, cost=f"${u.cost:.4f}")
    finally:
        bar.close()
    not_asked = Completion(None, error="not_requested: stopped by the budget cap")
    return [done.get(i, not_asked) for i in range(len(requests))]


def build_rows(problems: list[data.Problem], requests: list[Request], completions: list[Completion],
               teacher: Teacher, verify_options: dict, progress: bool = True) -> list[dict]:
    """One row per request: the rationale (or the teacher's failure) and its verdict."""
    gold = {pr.id: pr for pr in problems}
    produced = [(r, c) for r, c in zip(requests, completions) if c.text is not None]
    verdicts = iter(verify_many(((r.thought, c.text, gold[r.question_id].answer) for r, c in produced),
                                progress=progress, **verify_options))
    rows = []
    for request, completion in zip(requests, completions):
        problem = gold[request.question_id]
        verdict = next(verdicts) if completion.text is not None else None
        rows.append({
            "question_id": request.question_id, "dataset": problem.dataset, "question": problem.question,
            "gold": to_json(problem.answer), "thought": request.thought, "rationale": completion.text,
            "teacher": teacher_label(teacher), "teacher_is_llm": teacher.is_llm,
            "prompt_hash": teacher.prompt_version(request.thought), "sample_index": request.sample_index,
            "answer": to_json(verdict.answer) if verdict else None, "correct": bool(verdict and verdict.correct),
            "reason": verdict.reason if verdict else f"teacher:{completion.error.split(':')[0] or 'no_output'}",
            "input_tokens": completion.input_tokens, "output_tokens": completion.output_tokens,
        })
    return rows


def kept_rows(rows: list[dict]) -> list[dict]:
    """Verified rationales, without exact duplicates of the same question and thought type."""
    seen, kept = set(), []
    for row in rows:
        key = (row["question_id"], row["thought"], row["rationale"].strip() if row["rationale"] else None)
        if row["correct"] and key not in seen:
            seen.add(key)
            kept.append(row)
    return kept


def _questions_per_source(rows: list[dict]) -> dict[str, int]:
    """Training questions per source set (the main training set, then each benchmark's training fold)."""
    sources: dict[str, set] = {}
    for r in rows:
        sources.setdefault(r["dataset"], set()).add(r["question_id"])
    return {name: len(ids) for name, ids in sources.items()}


def summarize(rows: list[dict], kept: list[dict], teacher: Teacher, p: Params) -> dict:
    types = {}
    for thought in p.thought_types:
        mine = [r for r in rows if r["thought"] == thought]
        reasons: dict[str, int] = {}
        for r in mine:
            reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
        types[thought] = {
            "requested": len(mine), "generated": sum(r["rationale"] is not None for r in mine),
            "verified": sum(r["correct"] for r in mine), "kept": sum(r["thought"] == thought for r in kept),
            "reasons": dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
        }
    tokens_in, tokens_out = sum(r["input_tokens"] for r in rows), sum(r["output_tokens"] for r in rows)
    return {
        "teacher": teacher_label(teacher), "teacher_is_llm": teacher.is_llm, "teacher_settings": teacher.settings(),
        "prompt_hashes": {t: teacher.prompt_version(t) for t in p.thought_types},
        "train_dataset": p.train_dataset, "questions": len({r["question_id"] for r in rows}),
        "sources": _questions_per_source(rows),
        "samples_per_question": p.samples_per_question, "types": types,
        "etd_kept": len(kept),
        "tokens": {"input": tokens_in, "output": tokens_out, "total": tokens_in + tokens_out},
        "cost": round((tokens_in * p.price_input_per_m + tokens_out * p.price_output_per_m) / 1e6, 6),
        "new_teacher_calls": teacher.usage.requests, "stopped_by_budget": teacher.usage.stopped_by_budget,
    }


class SynthesisError(RuntimeError):
    """A thought type ended with no verified rationale: there is nothing to train its student on."""


def check_nonempty(summary: dict, thought_types: list[str]) -> None:
    empty = {t: summary["types"][t] for t in thought_types if summary["types"][t]["kept"] == 0}
    if empty:
        lines = "; ".join(f"{t}: {s['requested']} requested, {s['generated']} generated, 0 verified (reasons: "
                          f"{', '.join(f'{r} x{n}' for r, n in list(s['reasons'].items())[:4]) or 'none'})"
                          for t, s in empty.items())
        raise SynthesisError(f"no verified rationale for {', '.join(empty)} — {lines}. Fix the teacher (see the "
                             "reasons; a teacher:... reason means its calls failed) or drop the type from "
                             "thought_types; a re-run retries the failed calls and reuses the rest.")


@dataclass
class Synthesis:
    rows: list[dict]
    kept: list[dict]
    summary: dict
    outputs: dict[str, Path]


def _dataset(rows: list[dict], features: datasets.Features | None = None) -> datasets.Dataset:
    return datasets.Dataset.from_dict({c: [r[c] for r in rows] for c in COLUMNS}, features=features)


def save(rows: list[dict], kept: list[dict], p: Params) -> dict[str, Path]:
    """All rationales as a datasets dataset + JSONL, and the training splits (per type and the ETD mix) on disk."""
    folder = paths.cache_dir("synthesis") / p.name
    all_rows = _dataset(rows)
    all_rows.save_to_disk(str(folder / "rationales"))
    records.write_jsonl(folder / "rationales.jsonl", rows)
    splits = {t: [r for r in kept if r["thought"] == t] for t in p.thought_types}
    splits["etd"] = kept
    train = datasets.DatasetDict({name: _dataset(split, all_rows.features) for name, split in splits.items()})
    train.save_to_disk(str(folder / "train"))
    return {"rationales": folder / "rationales", "rationales_jsonl": folder / "rationales.jsonl",
            "train": folder / "train"}


def run(p: Params, progress: bool = True) -> Synthesis:
    """The whole stage: questions -> teacher (cached) -> verification -> dataset, splits and summary."""
    problems = training_problems(p)
    teacher = build(p)
    requests = requests_for(problems, p.thought_types, p.samples_per_question)
    cache = CompletionCache(paths.cache_dir("teacher") / "completions.sqlite")
    try:
        completions = generate(teacher, requests, cache, progress)
    finally:
        cache.close()
    rows = build_rows(problems, requests, completions, teacher,
                      {"timeout": p.verify_timeout, "memory_mb": p.verify_memory_mb}, progress)
    kept = kept_rows(rows)
    summary = summarize(rows, kept, teacher, p)
    try:
        check_nonempty(summary, p.thought_types)
    finally:
        records.write_json(paths.results_dir(p.name) / "synthesis_summary.json", summary)  # the evidence either way
    outputs = save(rows, kept, p)
    summary["outputs"] = outputs
    records.write_json(paths.results_dir(p.name) / "synthesis_summary.json", summary)
    return Synthesis(rows, kept, summary, outputs)


def acceptance_table(summary: dict):
    """Per thought type: requested, generated, verified, kept and the acceptance rate."""
    import pandas as pd

    table = pd.DataFrame(summary["types"]).T[["requested", "generated", "verified", "kept"]].astype(int)
    table["acceptance"] = (table["verified"] / table["generated"].where(table["generated"] > 0)).round(3)
    return table


def load_train_splits(p: Params) -> datasets.DatasetDict:
    """The verified training data written by `run`: one split per thought type plus "etd" (all types mixed)."""
    folder = paths.cache_dir("synthesis") / p.name / "train"
    if not folder.exists():
        raise FileNotFoundError(f"no synthesized training data for {p.name!r} at {folder}; run 01_data_synthesis first")
    return datasets.load_from_disk(str(folder))


def train_split_files(p: Params) -> list[Path]:
    """The files of the saved training splits (hashed into later stages' run.json)."""
    return sorted(f for f in (paths.cache_dir("synthesis") / p.name / "train").rglob("*") if f.is_file())


def rationales_for_verification(p: Params) -> tuple[Path, list[dict]]:
    """02's input: the params' rationales_file, else every rationale the synthesis stage wrote."""
    if p.rationales_file:
        source = paths.project_path(p.rationales_file)
        return source, records.read_jsonl(source, required=["question_id", "kind", "rationale", "gold"])
    source = paths.cache_dir("synthesis") / p.name / "rationales.jsonl"
    if not source.exists():
        raise FileNotFoundError(f"no rationales for {p.name!r} at {source}; run 01_data_synthesis or set rationales_file")
    rows = records.read_jsonl(source)
    return source, [{"question_id": r["question_id"], "kind": r["thought"], "rationale": r["rationale"],
                     "gold": r["gold"]} for r in rows if r["rationale"] is not None]


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the data-synthesis stage on a params file.")
    parser.add_argument("params_file")
    args = parser.parse_args()
    try:
        result = run(load_params(args.params_file))
    except (SynthesisError, ValueError) as exc:
        raise SystemExit(f"[eotd.synthesis] {exc}") from None
    print({t: (s["generated"], s["verified"], s["kept"]) for t, s in result.summary["types"].items()})


if __name__ == "__main__":
    main()
