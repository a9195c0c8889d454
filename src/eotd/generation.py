"""The students' (and the untrained baseline's) answers on the evaluation sets, generated once and cached.

Each model's outputs are cached per generation settings in .cache/predictions/<run>/, written every CACHE_CHUNK
prompts, so a re-run (or a killed run resumed) generates only what is missing. Local models decode with
eotd.infer; `student_base_url` sends the prompts to an OpenAI-compatible server instead (eotd.served).
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

from eotd import console, infer, machine, models, paths, prompts, protocol, records
from eotd.data import Problem
from eotd.params import Params
from eotd.served import generate as served_generate, model_name as served_model_name
from eotd.students import final_dir, labels

CACHE_CHUNK = 1024  # generations between cache writes (continuous batching keeps its batches full within one)


def _prompt(tokenizer, problem: Problem, thought: str, few_shot: int | None) -> str:
    if few_shot is None:
        return protocol.student_input(problem.question, thought)
    return prompts.for_model(tokenizer, thought, problem.question, few_shot)


def token_budget(p: Params, splits) -> dict[str, int]:
    """max_new_tokens per thought type: the longest training rationale of that type in the student's tokens plus a
    quarter, capped at p.max_new_tokens (a program needs far fewer tokens than prose; the cap is for types without
    training data)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(models.resolve(p.student))
    budget = {}
    for thought in protocol.THOUGHTS:
        rows = [r["rationale"] for r in splits["etd"] if r["thought"] == thought] if "etd" in splits else []
        lengths = tokenizer(rows, add_special_tokens=False)["input_ids"] if rows else []
        longest = max((len(ids) for ids in lengths), default=0)
        budget[thought] = min(p.max_new_tokens, math.ceil(1.25 * longest) + 1) if longest else p.max_new_tokens
    return budget


def predict(p: Params, label: str, model_path: str, sets: dict[str, list[Problem]], thoughts: tuple[str, ...],
            few_shot: int | None = None, progress: bool = True,
            max_new_tokens: dict[str, int] | None = None, only: set[tuple] | None = None) -> list[dict]:
    """Raw outputs of one model for every (set, problem, thought), or only the (set, question_id, thought) keys in
    `only`; cached per model and generation settings, so a re-run (or a resumed run) only generates what is missing.
    `max_new_tokens` per thought (see token_budget) defaults to p.max_new_tokens for every thought."""
    budget = {t: (max_new_tokens or {}).get(t, p.max_new_tokens) for t in thoughts}
    served = served_model_name(p, label) if p.student_base_url else None
    key = json.dumps([_identity(model_path), budget, few_shot,
                      {t: prompts.load(t).version for t in thoughts}]
                     + ([["served", served]] if served else [["decoding", infer.DECODING]]),
                     sort_keys=True)
    cache = paths.cache_dir("predictions") / p.name / f"{label}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.jsonl"
    done = {(r["dataset"], r["question_id"], r["thought"]): r for r in
            (records.read_jsonl(cache) if cache.exists() else [])}
    keys = [(name, pr, t) for name, problems in sets.items() for pr in problems for t in thoughts
            if only is None or (name, pr.id, t) in only]
    todo = [(name, pr, t) for name, pr, t in keys if (name, pr.id, t) not in done]
    if todo:
        if served:  # the engine holds the weights; the tokenizer is only needed for chat-template prompts
            from transformers import AutoTokenizer

            model, tokenizer = None, AutoTokenizer.from_pretrained(model_path)
        else:
            model, tokenizer = models.load_for_inference(model_path)
        texts = {item: _prompt(tokenizer, item[1], item[2], few_shot) for item in todo}
        todo.sort(key=lambda item: (item[2], -len(texts[item])))  # one budget per thought, similar lengths together
        written = "+".join(dict.fromkeys(t for _, _, t in todo))  # ETD's fallback rounds: one thought each
        bar = console.bar(total=len(todo), desc=f"generate {label} {written}", disable=not progress)
        for start in range(0, len(todo), CACHE_CHUNK):
            chunk = todo[start:start + CACHE_CHUNK]
            for thought in dict.fromkeys(t for _, _, t in chunk):
                items = [item for item in chunk if item[2] == thought]
                if served:
                    outputs = served_generate(p, label, [(texts[item], thought) for item in items], budget)
                else:
                    outputs = infer.generate(model, tokenizer, [texts[item] for item in items], budget[thought],
                                             p.eval_batch_size, batch_tokens=p.eval_batch_tokens)
                for (name, pr, t), text in zip(items, outputs):
                    done[(name, pr.id, t)] = {"dataset": name, "question_id": pr.id, "method": label, "thought": t,
                                              "output": prompts.load(t).parse(text), "raw_output": text,
                                              "gold": str(pr.answer)}
            records.write_jsonl(cache, done.values())  # a killed run keeps every finished chunk
            bar.update(len(chunk))
        bar.close()
        del model
        machine.trim_heap()  # the next model then starts from the same resident memory
    return [done[(name, pr.id, t)] for name, pr, t in keys]


def predict_as_needed(p: Params, label: str, model_path: str, sets: dict[str, list[Problem]],
                      thoughts: tuple[str, ...], progress: bool = True,
                      max_new_tokens: dict[str, int] | None = None) -> list[dict]:
    """The outputs p.fallback_orders read, generated in rounds: every order's first thought for every problem, then
    an order's next thought only where none before it gave an answer (each output scored here, once: evaluation keeps
    the verdict). The fallback rows equal those from every thought; each output is marked "as_needed", since
    per-thought accuracy or a vote over them would be biased. Shares predict's cache for `thoughts` (the student's
    types), both ways."""
    from eotd.evaluate import score

    orders = [[t for t in order if t in thoughts] for order in p.fallback_orders]
    answered: dict[tuple, bool] = {}
    outputs: dict[tuple, dict] = {}
    while True:
        wanted = {(name, pr.id, thought) for name, problems in sets.items() for pr in problems
                  for thought in {_next_needed(order, name, pr.id, answered) for order in orders} - {None}}
        if not wanted:
            break
        new = predict(p, label, model_path, sets, thoughts, progress=progress, max_new_tokens=max_new_tokens,
                      only=wanted)
        for rec in score(new, timeout=p.verify_timeout, memory_mb=p.verify_memory_mb):
            key = (rec["dataset"], rec["question_id"], rec["thought"])
            answered[key], outputs[key] = rec["answered"], rec
    return [{**outputs[name, pr.id, t], "as_needed": True} for name, problems in sets.items() for pr in problems
            for t in thoughts if (name, pr.id, t) in outputs]


def _next_needed(order: list[str], dataset: str, question_id: str, answered: dict[tuple, bool]) -> str | None:
    """The first thought of `order` not generated yet, unless an earlier one already gave an answer."""
    for thought in order:
        key = (dataset, question_id, thought)
        if key not in answered:
            return thought
        if answered[key]:
            return None
    return None


def predict_methods(p: Params, sets: dict[str, list[Problem]], max_new_tokens: dict[str, int]) -> list[dict]:
    """The outputs of the untrained baseline (when p.evaluate_base: its chat template, base_shots exemplars, each of
    base_thoughts) and of every trained student (each method, each seed) in its own thought types, on every set;
    an output's "method" is the student's label ("PoTD@1"). With p.etd_generation "fallback", a student of several
    thought types (ETD) writes only what its fallback orders read (predict_as_needed)."""
    outputs = []
    if p.evaluate_base:
        outputs += predict(p, protocol.BASELINE, models.resolve(p.student), sets, tuple(p.base_thoughts),
                           few_shot=p.base_shots, max_new_tokens=max_new_tokens)
    for label, (method, _) in labels(p).items():
        thoughts = protocol.METHODS[method]
        generate = predict_as_needed if p.etd_generation == "fallback" and len(thoughts) > 1 else predict
        outputs += generate(p, label, str(final_dir(p, label)), sets, thoughts, max_new_tokens=max_new_tokens)
    return outputs


def _identity(model_path: str) -> str:
    """What identifies the weights in the cache key: a trained student's done.json, else its hub id or its folder as
    paths.relative names it (never this machine's absolute path: a moved project, or a cache shared by two clones,
    keeps its generations)."""
    done = Path(model_path).parent / protocol.DONE_FILE
    if done.exists():
        return hashlib.sha256(done.read_bytes()).hexdigest()[:16]
    return paths.relative(model_path) if Path(model_path).exists() else model_path
