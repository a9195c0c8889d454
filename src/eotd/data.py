"""Benchmark loaders: GSM8K, SVAMP, ASDiv, MultiArith, GSM-Hard (local copy or HF hub) and GSM-Symbolic splits.

Gold answers are exact (int or Fraction). One converter per dataset turns a raw record (local file or hub row) into
a Problem. Bad records raise DataError (file, line / record, field); only non-numeric ASDiv answers are skipped.
"""
from __future__ import annotations

import hashlib
import json
import math
import random
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Callable, Iterable, Iterator

from eotd import paths
from eotd.records import utf8_text
from eotd.answers import Number, normalize, parse_number
from eotd.teachers.annotation import equation_solution

DATASETS = ("gsm8k_train", "gsm8k_test", "svamp", "asdiv", "multiarith", "gsm_hard")
# Benchmarks whose records carry their own equation, which `equation_solution` turns into a worked solution.
_WITH_EQUATIONS = ("svamp", "asdiv", "multiarith")


def has_equations(name: str) -> bool:
    """Whether a benchmark's problems carry a worked solution the annotation teacher can convert (GSM8K's annotated
    answers, or the set's own equations)."""
    return name in _WITH_EQUATIONS or name.startswith("gsm8k")


@dataclass(frozen=True)
class Problem:
    """One word problem with its exact gold answer."""
    id: str
    dataset: str
    question: str
    answer: Number
    solution: str | None = None


@dataclass(frozen=True)
class Skipped:
    """A record left out on purpose (ASDiv answers that are not one number), kept for the count."""
    id: str
    raw_answer: str
    reason: str


class ProblemSet(list):
    """list[Problem] plus provenance: name, source (file path or hub id) and the skipped records."""

    def __init__(self, items: Iterable[Problem] = (), name: str = "", source: str = "", skipped=None):
        super().__init__(items)
        self.name, self.source = name, source
        self.skipped: list[Skipped] = list(skipped or [])

    def __repr__(self) -> str:
        return f"ProblemSet({self.name!r}, source={self.source!r}, n={len(self)}, skipped={len(self.skipped)})"


class DataError(ValueError):
    """A data file or hub row that does not match its documented format."""


class _Bad(Exception):
    """A field-level problem inside one record; the reader adds the file and the location."""
    def __init__(self, field: str, reason: str):
        super().__init__(field, reason)
        self.field, self.reason = field, reason


def _field(rec, keys: str | tuple[str, ...], types) -> tuple[str, object]:
    """(key, value) of the first present key among `keys` (local and hub spellings), type-checked."""
    keys = (keys,) if isinstance(keys, str) else keys
    if not isinstance(rec, dict):
        raise _Bad("/".join(keys), f"record is a {type(rec).__name__}, not an object")
    key = next((k for k in keys if k in rec), None)
    if key is None:
        raise _Bad("/".join(keys), "missing")
    value = rec[key]
    if isinstance(value, bool) or not isinstance(value, types):
        expected = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
        raise _Bad(key, f"expected {expected}, got {type(value).__name__} {str(value)[:60]!r}")
    return key, value


def _text(rec, keys) -> str:
    return _field(rec, keys, str)[1].strip()


def _exact(value, field: str) -> Number:
    """Exact gold value: floats via Decimal(repr(x)) so 51.0 -> 51 and 0.1 -> 1/10; strings via parse_number."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Bad(field, f"not a finite number: {value!r}")
        return normalize(Decimal(repr(value)))
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    parsed = parse_number(value) if isinstance(value, str) else None
    if parsed is None:
        raise _Bad(field, f"not a number: {value!r}")
    return parsed


# ---- one converter per dataset: (record, index, dataset name) -> Problem | Skipped ----

def _gsm8k(rec, i: int, name: str) -> Problem:
    text = _field(rec, "answer", str)[1]
    if text.count("####") != 1:
        raise _Bad("answer", f"expected exactly one '####' final-answer line, found {text.count('####')}")
    gold = text.split("####")[1].strip().replace(",", "")
    return Problem(f"{name}-{i}", name, _text(rec, "question"), _exact(gold, "answer"), text)


def _svamp(rec, i: int, name: str) -> Problem:
    question = _text(rec, "Body") + " " + _text(rec, "Question")
    answer = _exact(_field(rec, "Answer", (int, float))[1], "Answer")
    equation = rec.get("Equation") if isinstance(rec, dict) else None
    solution = equation_solution(equation, answer, question) if isinstance(equation, str) else None
    return Problem(_text(rec, "ID"), name, question, answer, solution)


_NEG_PAREN = re.compile(r"^-\s*\(([^()]*)\)$")  # ASDiv writes -1/3 as "-(1/3)"; parse_number reads "(...)" as a unit


def _asdiv(rec, i: int, name: str) -> Problem | Skipped:
    # Hub rows (EleutherAI/asdiv) carry no ID; they keep the XML order, so position i is nluds-(i+1).
    rid = _text(rec, "ID") if isinstance(rec, dict) and "ID" in rec else f"nluds-{i + 1:04d}"
    question = _text(rec, ("Body", "body")) + " " + _text(rec, ("Question", "question"))
    raw = _text(rec, ("Answer", "answer"))
    neg = _NEG_PAREN.match(raw)
    value = parse_number(neg.group(1) if neg else raw)
    value = -value if neg and value is not None else value
    if value is None:
        reason = ("several answers" if ";" in raw else "ratio or clock time" if re.search(r"\d:\d", raw)
                  else "not a single number")
        return Skipped(rid, raw, reason)
    formula = rec.get("Formula", rec.get("formula")) if isinstance(rec, dict) else None
    solution = equation_solution(formula, value, question) if isinstance(formula, str) else None
    return Problem(rid, name, question, value, solution)


def _multiarith(rec, i: int, name: str) -> Problem:
    # Local file: sQuestion / lSolutions (MAWPS); hub ChilleD/MultiArith: question / final_ans (a string).
    # Hub ids follow train+test order, which is not the local iIndex order.
    key, value = _field(rec, ("lSolutions", "final_ans"), (list, str, int, float))
    if isinstance(value, list):
        if len(value) != 1:
            raise _Bad(key, f"expected one solution, got {len(value)}")
        value = value[0]
    question, answer = _text(rec, ("sQuestion", "question")), _exact(value, key)
    equations = rec.get("lEquations") if isinstance(rec, dict) else None
    solution = equation_solution(equations[0], answer, question) \
        if isinstance(equations, list) and len(equations) == 1 and isinstance(equations[0], str) else None
    return Problem(f"multiarith-{i}", name, question, answer, solution)


def _gsm_hard(rec, i: int, name: str) -> Problem:
    # Targets come from running float programs (14053029.666666666): a non-integral one is a rounded float, so it
    # stays a float and compares with the tolerance, not exactly.
    target = _field(rec, "target", (int, float))[1]
    target = target if isinstance(target, float) and math.isfinite(target) and not target.is_integer() \
        else _exact(target, "target")
    return Problem(f"gsm_hard-{i}", name, _text(rec, "input"), target, _field(rec, "code", str)[1])


_CONVERTERS: dict[str, Callable] = {"gsm8k_train": _gsm8k, "gsm8k_test": _gsm8k, "svamp": _svamp, "asdiv": _asdiv,
                                    "multiarith": _multiarith, "gsm_hard": _gsm_hard}
_LOCAL = {"gsm8k_train": "gsm8k/train.jsonl", "gsm8k_test": "gsm8k/test.jsonl", "svamp": "svamp/SVAMP.json",
          "asdiv": "asdiv/ASDiv.xml", "multiarith": "multiarith/MultiArith.json",
          "gsm_hard": "gsm_hard/gsmhardv2.jsonl"}
# name -> (hub id, config, splits concatenated in this order)
_HUB = {"gsm8k_train": ("openai/gsm8k", "main", ("train",)), "gsm8k_test": ("openai/gsm8k", "main", ("test",)),
        "svamp": ("ChilleD/SVAMP", None, ("train", "test")), "asdiv": ("EleutherAI/asdiv", None, ("validation",)),
        "multiarith": ("ChilleD/MultiArith", None, ("train", "test")),
        "gsm_hard": ("reasoning-machines/gsm-hard", None, ("train",))}


# ---- readers: yield (location, raw record) ----

def _read_jsonl(path: Path) -> Iterator[tuple[str, object]]:
    for n, line in enumerate(utf8_text(path, DataError).split("\n"), 1):
        if not line.strip():
            continue
        try:
            yield f"line {n}", json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: line {n}: invalid JSON ({e.msg} at column {e.colno})") from None


def _read_json(path: Path) -> Iterator[tuple[str, object]]:
    try:
        records = json.loads(utf8_text(path, DataError))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: line {e.lineno}: invalid JSON ({e.msg})") from None
    if not isinstance(records, list):
        raise DataError(f"{path}: expected a JSON array of records, got {type(records).__name__}")
    for i, rec in enumerate(records):
        rid = rec.get("ID", rec.get("iIndex")) if isinstance(rec, dict) else None
        yield f"record {i}" + (f" (id {rid!r})" if rid is not None else ""), rec


def _read_xml(path: Path) -> Iterator[tuple[str, object]]:
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise DataError(f"{path}: line {e.position[0]}: invalid XML ({e})") from None
    for i, p in enumerate(root.iter("Problem")):
        yield f"record {i} (ID {p.get('ID')!r})", {**p.attrib, **{c.tag: c.text for c in p}}


def _read_hub(name: str) -> Iterator[tuple[str, object]]:
    import datasets

    hub_id, config, splits = _HUB[name]
    for split in splits:
        try:
            rows = datasets.load_dataset(hub_id, config, split=split)
        except Exception as e:
            raise RuntimeError(f"could not load {hub_id!r} split {split!r} from the Hugging Face hub ({e}); "
                               "set EOTD_DATA_DIR to a local copy laid out like shared/data") from e
        for j, row in enumerate(rows):
            yield f"split {split!r} row {j}", dict(row)


def _convert(name: str, records: Iterable[tuple[str, object]], source: str) -> ProblemSet:
    out = ProblemSet(name=name, source=source)
    convert = _CONVERTERS[name]
    for i, (where, rec) in enumerate(records):
        try:
            item = convert(rec, i, name)
        except _Bad as e:
            raise DataError(f"{source}: {where}: field {e.field!r}: {e.reason}") from None
        (out.skipped if isinstance(item, Skipped) else out).append(item)
    if not out and not out.skipped:
        raise DataError(f"{source}: no records")
    seen: set[str] = set()
    for item in [*out, *out.skipped]:
        if item.id in seen:
            raise DataError(f"{source}: duplicate id {item.id!r}")
        seen.add(item.id)
    return out


def load(name: str, data_dir: str | Path | None = None) -> ProblemSet:
    """Load one benchmark from data_dir, else EOTD_DATA_DIR, else the Hugging Face hub."""
    if name not in DATASETS:
        hint = " (use load_gsm_symbolic)" if name == "gsm_symbolic" else ""
        raise ValueError(f"unknown dataset {name!r}{hint}; valid names: {', '.join(DATASETS)}")
    base = Path(data_dir).expanduser() if data_dir is not None else paths.data_dir()
    if base is None:
        hub_id, config, splits = _HUB[name]
        source = f"hf://{hub_id}" + (f"[{config}]" if config else "") + f" ({'+'.join(splits)})"
        return _convert(name, _read_hub(name), source)
    path = base / _LOCAL[name]
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the data folder must be laid out like shared/data")
    reader = {".jsonl": _read_jsonl, ".json": _read_json, ".xml": _read_xml}[path.suffix]
    return _convert(name, reader(path), str(path))


# ---- GSM-Symbolic (reasoning-gym) ----

# reasoning-gym appends this instruction to every question; the other benchmarks have none, prompts add their own.
_RG_SUFFIX = " Give the result as your final answer. Do not include units."


def _in_instance_test(question: str, test_fraction: float) -> bool:
    # Membership depends on the text alone, so no question is ever in both splits, whatever n or seed.
    digest = hashlib.sha256(question.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < test_fraction


def gsm_symbolic_templates(seed: int, test_fraction: float = 0.2) -> tuple[list[int], list[int]]:
    """(train, test) template ids: a seeded shuffle of reasoning-gym's usable templates, test_fraction held out."""
    from reasoning_gym.arithmetic.gsm_symbolic.gsm_symbolic import tasks_ok  # the 85 usable templates

    templates = sorted(tasks_ok)
    random.Random(f"eotd-gsm_symbolic-templates-{seed}").shuffle(templates)
    k = min(len(templates) - 1, max(1, round(len(templates) * test_fraction)))
    return sorted(templates[k:]), sorted(templates[:k])


def gsm_symbolic_template(problem: Problem) -> int:
    """The reasoning-gym template a GSM-Symbolic problem was generated from (it is part of the id)."""
    return int(problem.id.removeprefix("gsm_symbolic-t").split("-", 1)[0])


def load_gsm_symbolic(n: int, seed: int, split: str = "train", by: str = "template",
                      test_fraction: float = 0.2) -> ProblemSet:
    """n GSM-Symbolic problems of one split; train and test calls must share seed and test_fraction."""
    if split not in ("train", "test") or by not in ("template", "instance"):
        raise ValueError(f"split must be 'train' or 'test' and by 'template' or 'instance', got {split!r}, {by!r}")
    if not 0 < test_fraction < 1 or n < 0:
        raise ValueError(f"need 0 < test_fraction < 1 and n >= 0, got {test_fraction}, {n}")
    import importlib.metadata

    import reasoning_gym  # slow (~5 s first time): imported only here

    train_t, test_t = gsm_symbolic_templates(seed, test_fraction)
    wanted = set(test_t if split == "test" else train_t)
    source = (f"reasoning_gym {importlib.metadata.version('reasoning-gym')} gsm_symbolic seed={seed} split={split} "
              f"by={by} test_fraction={test_fraction}")
    out, seen = ProblemSet(name="gsm_symbolic", source=source), set()
    # One stream per seed, partitioned between the splits. Item idx uses Random(seed + idx) and its template is
    # task_indices[idx] (Random(seed).choices, prefix-stable in size), so growing the dataset keeps earlier items.
    size, idx, ds = 0, 0, None
    while len(out) < n:
        if idx >= size:
            if size > 100 * n + 100_000:
                raise RuntimeError(f"gsm_symbolic: only {len(out)} of {n} distinct {split} problems in {idx} items")
            size = max(1024, 2 * size, 4 * n)
            ds = reasoning_gym.create_dataset("gsm_symbolic", size=size, seed=seed)
        item, template = ds[idx], ds.task_indices[idx]  # metadata source_index is idx, not the template
        pid, idx = f"gsm_symbolic-t{template}-s{seed}-{idx}", idx + 1
        question = item["question"].removesuffix(_RG_SUFFIX).strip()
        if by == "template" and template not in wanted:
            continue
        if by == "instance" and _in_instance_test(question, test_fraction) != (split == "test"):
            continue
        if question in seen:  # small variable ranges repeat questions; keep each text once
            continue
        seen.add(question)
        meta = item["metadata"]
        try:
            gold = _exact(_field(meta, "answer_value", (int, float))[1], "answer_value")
            cot = _field(meta, "answer_cot", str)[1]
            if {parse_number(item["answer"]), parse_number(cot.rsplit("####", 1)[-1])} != {gold}:
                raise _Bad("answer", f"answer {item['answer']!r}, answer_value and answer_cot '####' disagree")
        except _Bad as e:
            raise DataError(f"{source}: item {idx - 1} ({pid}): field {e.field!r}: {e.reason}") from None
        out.append(Problem(pid, "gsm_symbolic", question, gold, cot))
    return out
