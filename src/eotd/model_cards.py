"""Each trained student's README.md (a Hugging Face model card): base model, method, params and training-data hash,
then its evaluation table once 04 has run."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from eotd import models, protocol, records
from eotd.params import Params
from eotd.train import TrainResult, data_hash


def write(folder: Path, p: Params, label: str, rows: list[dict], result: TrainResult) -> Path:
    """README.md of a trained student: base model, method, params and training-data hash (accuracy added by 04)."""
    method, seed = protocol.split_label(label)
    thoughts = protocol.METHODS.get(method, sorted({r["thought"] for r in rows}))
    lines = [
        "---", "library_name: transformers", "tags: [math-reasoning, distillation, eotd]", "---",
        f"# {method} student distilled from `{p.student}`", "",
        *([f"- Training seed (data order): {seed}"] if seed is not None else []),
        f"- Base model: `{p.student}` ({models.describe(p.student)})",
        f"- Method: {label}, trained on thought types {', '.join(thoughts)}; input `Question: <q>\\n<trigger>\\n`",
        f"- Training data: {len(rows)} verified rationales from "
        + (f"`{p.rationales_file}`" if p.rationales_file else f"the `{p.train_dataset}` synthesis")
        + f" of params `{p.name}`, data hash `{data_hash(rows)}`",
        f"- Training: {result.steps} optimizer steps, {result.train_tokens:,} tokens, {result.seconds:.0f} s",
        "", "## Params", "", "```json", json.dumps(p.to_dict(), indent=2), "```",
    ]
    path = Path(folder) / "README.md"
    records.atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def update(folders: dict[str, Path], accuracy: pd.DataFrame) -> list[Path]:
    """Put (or replace) each trained student's evaluation table (its own seed's rows of `accuracy`, e.g.
    accuracy_by_seed.csv) in its model card; `folders`: label ("PoTD@1") -> trained folder (students.final_dirs)."""
    updated = []
    for label, folder in folders.items():
        method, seed = protocol.split_label(label)
        card = Path(folder) / "README.md"
        if not card.exists():
            continue
        head = card.read_text().split("\n## Evaluation\n")[0].rstrip("\n")
        mine = accuracy[(accuracy.method == method) & (accuracy.seed == seed)] if "seed" in accuracy else \
            accuracy[accuracy.method == method]
        table = mine.to_markdown(index=False, floatfmt=".3f")
        records.atomic_write_text(card, f"{head}\n\n## Evaluation\n\n{table}\n")
        updated.append(card)
    return updated
