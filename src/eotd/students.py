"""Students: which ones a run trains (one per method and training seed), where they live, and their training on the
verified rationales of 02. Generating their answers is eotd.generation; their README is eotd.model_cards."""
from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pandas as pd

from eotd import model_cards, paths, protocol
from eotd.params import Params
from eotd.train import TrainResult, train
from eotd.train_config import TrainConfig


def train_config(p: Params) -> TrainConfig:
    """The training settings of a params file (Params inherits TrainConfig's fields), alone: they make a student's run
    hash, which the rest of the params must not change."""
    return TrainConfig(**{f.name: getattr(p, f.name) for f in dataclasses.fields(TrainConfig)})


def student_dir(p: Params, label: str) -> Path:
    """Checkpoints and the final folder of one trained student (model cache, never git)."""
    return paths.cache_dir("students") / p.name / label.replace(":", "_").replace("+", "_").replace("%", "pct")


def final_dir(p: Params, label: str) -> Path:
    """The trained student's transformers folder (what evaluation loads)."""
    return student_dir(p, label) / protocol.FINAL_DIR


def final_dirs(p: Params) -> dict[str, Path]:
    """Every trained student's folder, by label."""
    return {label: final_dir(p, label) for label in labels(p)}


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
    state = PartialState()
    alone = p.isolate_students and state.num_processes == 1
    result = train(p.student, rows, student_dir(p, label), config, method=label, progress=progress, isolate=alone)
    if state.is_main_process:  # under `accelerate launch` only one process writes
        model_cards.write(result.path, p, label, rows, result)
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
    """One student per method in p.methods and training seed, from the verification stage's splits; keyed by label."""
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


def main() -> None:
    """`[accelerate launch --config_file cfg.yaml] python -m eotd.students params/X.yaml`: train every method of a
    params file outside the notebooks (e.g. on several GPUs); 03_fine_tuning then reuses the finished students."""
    import argparse

    from eotd import verification
    from eotd.params import load

    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    parser.add_argument("params_file")
    p = load(parser.parse_args().params_file)
    from accelerate import PartialState

    results = train_methods(p, verification.load_train_splits(p))
    if PartialState().is_main_process:
        for label, result in results.items():
            how = "reused" if result.skipped else f"{result.steps} steps"
            print(f"{label}: {paths.relative(result.path)} ({how})")


if __name__ == "__main__":
    main()
