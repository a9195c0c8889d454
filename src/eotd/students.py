"""Students: train one per method (CoTD, PoTD, EoTD, ETD) on the verified rationales, generate their thoughts on the
evaluation sets, and describe each trained folder with a model card."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import random
from pathlib import Path

import pandas as pd

from eotd import console, infer, models, paths, prompts, protocol, records
from eotd.data import Problem
from eotd.params import Params
from eotd.served import generate as served_generate, model_name as served_model_name
from eotd.train import TrainConfig, TrainResult, data_hash, train

CACHE_CHUNK = 1024  # generations between cache writes (continuous batching keeps its batches full within one)


def train_config(p: Params) -> TrainConfig:
    """The training settings a params file sets (the keys both share); the rest keep TrainConfig's defaults."""
    shared = {f.name for f in dataclasses.fields(TrainConfig)} & {f.name for f in dataclasses.fields(Params)}
    return TrainConfig(**{name: getattr(p, name) for name in shared})


def student_dir(p: Params, label: str) -> Path:
    """Checkpoints and the final folder of one trained student (model cache, never git)."""
    return paths.cache_dir("students") / p.name / label.replace(":", "_").replace("+", "_").replace("%", "pct")


def final_dir(p: Params, label: str) -> Path:
    """The trained student's transformers folder (what evaluation loads)."""
    return student_dir(p, label) / protocol.FINAL_DIR


def seeds(p: Params, method: str) -> list[int]:
    """The training seeds (data orders) of a method: train_seeds[method], else the run's seed."""
    return list(p.train_seeds.get(method, [p.seed]))


def labels(p: Params) -> dict[str, tuple[str, int]]:
    """Every trained student of the run: label ("PoTD@1") -> (method, seed), methods in params order."""
    return {protocol.student_label(m, s): (m, s) for m in p.methods for s in seeds(p, m)}


def main_label(p: Params, method: str) -> str:
    """The label of a method's student trained with the run's seed (what an ablation variant with the same data
    reuses)."""
    return protocol.student_label(method, p.seed)


def fit(p: Params, label: str, rows: list[dict], progress: bool = True, seed: int | None = None) -> TrainResult:
    """Train (or resume, or reuse) the student for one method or ablation variant, and write its model card.
    `seed` (default: the run's) fixes the data order and nothing else."""
    from accelerate import PartialState

    config = dataclasses.replace(train_config(p), seed=p.seed if seed is None else seed)
    result = train(p.student, rows, student_dir(p, label), config, method=label, progress=progress)
    if PartialState().is_main_process:  # under `accelerate launch` only one process writes
        write_model_card(result.path, p, label, rows, result)
    return result


def one_type_per_question(rows: list[dict], seed: int) -> list[dict]:
    """ETD data at the single-format budget: each question once, its thought type dealt round-robin over a seeded
    shuffle of the questions (so the three types are equally represented), falling back to another verified type
    when the dealt one was not verified."""
    by_question: dict[str, dict[str, dict]] = {}
    for row in rows:
        by_question.setdefault(row["question_id"], {}).setdefault(row["thought"], row)
    order = sorted(by_question)
    random.Random(f"etd-{seed}").shuffle(order)
    thoughts = list(protocol.THOUGHTS)
    chosen = set()
    for k, qid in enumerate(order):
        have = by_question[qid]
        dealt = thoughts[k % len(thoughts)]
        pick = have.get(dealt) or next(have[t] for t in thoughts if t in have)
        chosen.add(id(pick))
    return [row for row in rows if id(row) in chosen]


def training_rows(p: Params, splits, method: str) -> list[dict]:
    """A method's training data: its type's split; ETD's is the union of all types (the paper) or, with
    etd_data: one_per_question, one rationale per question (the same budget as a single-format method)."""
    rows = list(splits[protocol.TRAIN_SPLIT[method]])
    if method == "ETD" and p.etd_data == "one_per_question":
        rows = one_type_per_question(rows, p.seed)
    return rows


def train_methods(p: Params, splits, progress: bool = True) -> dict[str, TrainResult]:
    """One student per method in p.methods and training seed, from the synthesis stage's splits; keyed by label."""
    return {label: fit(p, label, training_rows(p, splits, m), progress, seed=s) for label, (m, s) in labels(p).items()}


def losses_frame(results: dict[str, TrainResult]) -> pd.DataFrame:
    return pd.DataFrame([{"method": label, **row} for label, r in results.items() for row in r.losses])


def training_figures(results: dict[str, TrainResult]) -> pd.DataFrame:
    """One row per student: optimizer steps, tokens, seconds, tokens/s, whether an earlier run's student was reused,
    the last step's loss and the trained folder."""
    return pd.DataFrame({label: {
        "steps": r.steps, "train tokens": r.train_tokens, "seconds": round(r.seconds),
        "tokens/s": round(r.train_tokens / r.seconds) if r.seconds else None, "reused": r.skipped,
        "final loss": r.losses[-1]["loss"] if r.losses else None, "folder": paths.relative(r.path),
    } for label, r in results.items()}).T


def write_model_card(folder: Path, p: Params, label: str, rows: list[dict], result: TrainResult) -> Path:
    """README.md of a trained student: base model, method, params and training-data hash (accuracy added by 04)."""
    method, seed = protocol.split_label(label)
    thoughts = protocol.METHODS.get(method, sorted({r["thought"] for r in rows}))
    lines = [
        "---", "library_name: transformers", "tags: [math-reasoning, distillation, eotd]", "---",
        f"# {method} student distilled from `{p.student}`", "",
        *([f"- Training seed (data order): {seed}"] if seed is not None else []),
        f"- Base model: `{p.student}` ({models.describe(p.student)})",
        f"- Method: {label}, trained on thought types {', '.join(thoughts)}; input `Question: <q>\\n<trigger>\\n`",
        f"- Training data: {len(rows)} verified rationales from the `{p.train_dataset}` synthesis of params "
        f"`{p.name}`, data hash `{data_hash(rows)}`",
        f"- Training: {result.steps} optimizer steps, {result.train_tokens:,} tokens, {result.seconds:.0f} s",
        "", "## Params", "", "```json", json.dumps(p.to_dict(), indent=2), "```",
    ]
    path = Path(folder) / "README.md"
    records.atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def update_model_cards(p: Params, accuracy: pd.DataFrame) -> list[Path]:
    """Put (or replace) each trained student's evaluation table (its own seed's rows of `accuracy`, e.g.
    accuracy_by_seed.csv) in its model card."""
    updated = []
    for label, (method, seed) in labels(p).items():
        card = final_dir(p, label) / "README.md"
        if not card.exists():
            continue
        head = card.read_text().split("\n## Evaluation\n")[0].rstrip("\n")
        mine = accuracy[(accuracy.method == method) & (accuracy.seed == seed)] if "seed" in accuracy else \
            accuracy[accuracy.method == method]
        table = mine.to_markdown(index=False, floatfmt=".3f")
        records.atomic_write_text(card, f"{head}\n\n## Evaluation\n\n{table}\n")
        updated.append(card)
    return updated


def _prompt(tokenizer, problem: Problem, thought: str, few_shot: int | None) -> str:
    if few_shot is None:
        return protocol.student_input(problem.question, thought)
    return prompts.for_model(tokenizer, thought, problem.question, few_shot)


def generation_budget(p: Params, splits) -> dict[str, int]:
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
    `max_new_tokens` per thought (see generation_budget) defaults to p.max_new_tokens for every thought."""
    budget = {t: (max_new_tokens or {}).get(t, p.max_new_tokens) for t in thoughts}
    served = served_model_name(p, label) if p.student_base_url else None
    key = json.dumps([model_path, _fingerprint(model_path), budget, few_shot,
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
    return [done[(name, pr.id, t)] for name, pr, t in keys]


def predict_as_needed(p: Params, label: str, model_path: str, sets: dict[str, list[Problem]],
                      thoughts: tuple[str, ...], progress: bool = True,
                      max_new_tokens: dict[str, int] | None = None) -> list[dict]:
    """The outputs p.fallback_orders read, generated in rounds: every order's first thought for every problem, then
    an order's next thought only where none before it produced an answer (scored as evaluation scores them). The
    fallback rows equal those from every thought; each output is marked "as_needed", since per-thought accuracy or a
    vote over them would be biased. Shares predict's cache for `thoughts` (the student's types), both ways."""
    from eotd.evaluate import score

    orders = [[t for t in order if t in thoughts] for order in p.fallback_orders]
    produced: dict[tuple, bool] = {}
    outputs: dict[tuple, dict] = {}
    while True:
        wanted = {(name, pr.id, thought) for name, problems in sets.items() for pr in problems
                  for thought in {_next_needed(order, name, pr.id, produced) for order in orders} - {None}}
        if not wanted:
            break
        new = predict(p, label, model_path, sets, thoughts, progress=progress, max_new_tokens=max_new_tokens,
                      only=wanted)
        for raw, rec in zip(new, score(new, timeout=p.verify_timeout, memory_mb=p.verify_memory_mb)):
            key = (raw["dataset"], raw["question_id"], raw["thought"])
            produced[key], outputs[key] = rec["produced"], raw
    return [{**outputs[name, pr.id, t], "as_needed": True} for name, problems in sets.items() for pr in problems
            for t in thoughts if (name, pr.id, t) in outputs]


def _next_needed(order: list[str], dataset: str, question_id: str, produced: dict[tuple, bool]) -> str | None:
    """The first thought of `order` not generated yet, unless an earlier one already produced an answer."""
    for thought in order:
        key = (dataset, question_id, thought)
        if key not in produced:
            return thought
        if produced[key]:
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


def _fingerprint(model_path: str) -> str:
    """What identifies the weights: a trained student's done.json, else the name itself."""
    done = Path(model_path).parent / protocol.DONE_FILE
    return hashlib.sha256(done.read_bytes()).hexdigest()[:16] if done.exists() else model_path


def main() -> None:
    """`[accelerate launch --config_file cfg.yaml] python -m eotd.students params/X.yaml`: train every method of a
    params file outside the notebooks (e.g. on several GPUs); 03_fine_tuning then reuses the finished students."""
    import argparse

    from eotd import synthesis
    from eotd.params import load

    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    parser.add_argument("params_file")
    p = load(parser.parse_args().params_file)
    from accelerate import PartialState

    results = train_methods(p, synthesis.load_train_splits(p))
    if PartialState().is_main_process:
        for label, result in results.items():
            how = "reused" if result.skipped else f"{result.steps} steps"
            print(f"{label}: {paths.relative(result.path)} ({how})")


if __name__ == "__main__":
    main()
