"""Stage 01, data synthesis: a teacher writes CoT/PoT/EoT rationales for the training questions.

The stage writes them as they came, failures included; 02 (eotd.verification) verifies them and keeps the training
data. Every completion goes through the on-disk cache, so a re-run makes no new teacher call and a killed run resumes
where it stopped. `python -m eotd.synthesis params/X.yaml` runs the stage outside a notebook.
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
from eotd.protocol import FORWARD_EOT_METHOD
from eotd.teachers import Request, Teacher, build
from eotd.teachers.annotation import AnnotationTeacher
from eotd.teachers.base import Completion
from eotd.teachers.cache import CompletionCache, cache_key

SUMMARY = "synthesis_summary.json"
COLUMNS = ("question_id", "dataset", "question", "gold", "thought", "variant", "rationale", "teacher", "teacher_is_llm",
           "prompt_hash", "sample_index", "error", "input_tokens", "output_tokens", "schema", "cue")  # of a build_rows row
FORWARD = "forward"  # the variant of the forward EoT that EoTD-forward trains on


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
               teacher: Teacher, variant: str = "") -> list[dict]:
    """One row per request: the teacher's rationale, or its failure in `error` (02 verifies the rationales); an EoT
    row carries the schema and cue of what it states when the teacher can say (the annotation teacher's `describe`).
    `variant` "forward" marks the forward EoT that EoTD-forward trains on."""
    gold = {pr.id: pr for pr in problems}
    describe = getattr(teacher, "describe", lambda request: {})
    rows = []
    for request, completion in zip(requests, completions):
        problem = gold[request.question_id]
        said = describe(request) if request.thought == "eot" and completion.text is not None else {}
        rows.append({
            "question_id": request.question_id, "dataset": problem.dataset, "question": problem.question,
            "gold": to_json(problem.answer), "thought": request.thought, "variant": variant,
            "rationale": completion.text,
            "teacher": teacher_label(teacher), "teacher_is_llm": teacher.is_llm,
            "prompt_hash": teacher.prompt_version(request.thought), "sample_index": request.sample_index,
            "error": None if completion.text is not None else completion.error.split(":")[0] or "no_output",
            "input_tokens": completion.input_tokens, "output_tokens": completion.output_tokens,
            "schema": said.get("schema"), "cue": said.get("cue"),
        })
    return rows


def _questions_per_source(rows: list[dict]) -> dict[str, int]:
    """Training questions per source set (the main training set, then each benchmark's training fold)."""
    sources: dict[str, set] = {}
    for r in rows:
        sources.setdefault(r["dataset"], set()).add(r["question_id"])
    return {name: len(ids) for name, ids in sources.items()}


def summarize(rows: list[dict], teacher: Teacher, p: Params) -> dict:
    """The teacher's side of synthesis_summary.json: what was asked, written and spent (02 adds the verdicts)."""
    types = {thought: {"requested": sum(r["thought"] == thought for r in rows),
                       "generated": sum(r["thought"] == thought and r["rationale"] is not None for r in rows)}
             for thought in p.thought_types}
    tokens_in, tokens_out = sum(r["input_tokens"] for r in rows), sum(r["output_tokens"] for r in rows)
    return {
        "teacher": teacher_label(teacher), "teacher_is_llm": teacher.is_llm, "teacher_settings": teacher.settings(),
        "prompt_hashes": {t: teacher.prompt_version(t) for t in p.thought_types},
        "train_dataset": p.train_dataset, "questions": len({r["question_id"] for r in rows}),
        "sources": _questions_per_source(rows),
        "samples_per_question": p.samples_per_question, "types": types,
        "tokens": {"input": tokens_in, "output": tokens_out, "total": tokens_in + tokens_out},
        "cost": round((tokens_in * p.price_input_per_m + tokens_out * p.price_output_per_m) / 1e6, 6),
        "new_teacher_calls": teacher.usage.requests, "stopped_by_budget": teacher.usage.stopped_by_budget,
    }


class SynthesisError(RuntimeError):
    """The teacher wrote nothing for a thought type: there is nothing to verify or train on."""


def check_generated(summary: dict, rows: list[dict]) -> None:
    empty = [t for t, s in summary["types"].items() if s["generated"] == 0]
    if empty:
        errors = {t: sorted({r["error"] for r in rows if r["thought"] == t}) for t in empty}
        lines = "; ".join(f"{t}: {summary['types'][t]['requested']} requested, 0 generated (teacher errors: "
                          f"{', '.join(errors[t][:4]) or 'none'})" for t in empty)
        raise SynthesisError(f"the teacher wrote no rationale for {', '.join(empty)} — {lines}. Fix the teacher or "
                             "drop the type from thought_types; a re-run retries the failed calls and reuses the rest.")


@dataclass
class Synthesis:
    rows: list[dict]
    summary: dict
    outputs: dict[str, Path]


def folder(p: Params) -> Path:
    return paths.cache_dir("synthesis") / p.name


def rationales_path(p: Params) -> Path:
    """The JSONL of every rationale `run` wrote, 02's input."""
    return folder(p) / "rationales.jsonl"


def save(rows: list[dict], p: Params) -> dict[str, Path]:
    """Every rationale (and every failed request) as a datasets dataset and as JSONL, which 02 reads."""
    datasets.Dataset.from_list(rows).save_to_disk(str(folder(p) / "rationales"))
    records.write_jsonl(rationales_path(p), rows)
    return {"rationales": folder(p) / "rationales", "rationales_jsonl": rationales_path(p)}


def file_summary(p: Params) -> dict:
    """01's record when the params name a rationales_file: no teacher runs; 02 verifies the file instead."""
    return {"teacher": "rationales_file", "rationales_file": paths.relative(paths.project_path(p.rationales_file)),
            "train_dataset": "rationales_file", "questions": 0, "sources": {}, "types": {},
            "tokens": {"input": 0, "output": 0, "total": 0}, "cost": 0.0, "new_teacher_calls": 0,
            "stopped_by_budget": False}


def run(p: Params, progress: bool = True) -> Synthesis:
    """The whole stage: questions -> teacher (cached) -> raw rationales and the teacher's summary."""
    if p.rationales_file:
        summary = file_summary(p)
        records.write_json(paths.results_dir(p.name) / SUMMARY, summary)
        return Synthesis([], summary, {})
    problems = training_problems(p)
    teacher = build(p)
    requests = requests_for(problems, p.thought_types, p.samples_per_question)
    cache = CompletionCache(paths.cache_dir("teacher") / "completions.sqlite")
    try:
        completions = generate(teacher, requests, cache, progress)
        rows = build_rows(problems, requests, completions, teacher)
        if FORWARD_EOT_METHOD in p.methods:
            forward = AnnotationTeacher(eot_form="forward")
            forward_requests = requests_for(problems, ["eot"], p.samples_per_question)
            rows += build_rows(problems, forward_requests, generate(forward, forward_requests, cache, progress),
                               forward, variant=FORWARD)
    finally:
        cache.close()
    summary = summarize([r for r in rows if not r["variant"]], teacher, p)
    try:
        check_generated(summary, rows)
    finally:
        records.write_json(paths.results_dir(p.name) / SUMMARY, summary)  # the evidence either way
    outputs = save(rows, p)
    summary["outputs"] = outputs
    records.write_json(paths.results_dir(p.name) / SUMMARY, summary)
    return Synthesis(rows, summary, outputs)


def read_rationales(p: Params) -> list[dict]:
    """The rows `run` wrote (02's input when no rationales_file is set)."""
    source = rationales_path(p)
    if not source.exists():
        raise FileNotFoundError(f"no rationales for {p.name!r} at {paths.relative(source)}; run 01_data_synthesis "
                                "first (or set rationales_file)")
    return records.read_jsonl(source)


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the data-synthesis stage on a params file.")
    parser.add_argument("params_file")
    args = parser.parse_args()
    try:
        result = run(load_params(args.params_file))
    except (SynthesisError, ValueError) as exc:
        raise SystemExit(f"[eotd.synthesis] {exc}") from None
    print({t: (s["requested"], s["generated"]) for t, s in result.summary["types"].items()})


if __name__ == "__main__":
    main()
