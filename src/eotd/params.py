"""One params file per run (params/<name>.yaml), loaded and validated here.

Every key is a field of `Params`; an unknown key or a value of the wrong type is an error naming the key and the file.
The notebooks' `parameters` cells use the same names, and papermill feeds them with `-f params/<name>.yaml`.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from eotd import paths


class ParamsError(ValueError):
    pass


@dataclass(frozen=True)
class Params:
    name: str  # results go to results/<name>/; defaults to the file's stem
    seed: int = 0
    data_dir: str | None = None  # local benchmark copy; None = EOTD_DATA_DIR, else the HF hub
    thought_types: list[str] = field(default_factory=lambda: ["cot", "pot", "eot"])
    # data synthesis (01)
    train_dataset: str = "gsm_symbolic"  # "gsm_symbolic" (reasoning-gym, offline) or a loader name like "gsm8k_train"
    train_questions: int | None = None  # a seeded sample of this many training questions; None = all
    gsm_symbolic_split: str = "template"  # hold out whole templates ("template") or instances ("instance")
    gsm_symbolic_test_fraction: float = 0.2
    teacher: str = "annotation"  # "annotation" (gold-derived, offline) | "openai" (any compatible endpoint) | "transformers"
    teacher_model: str | None = None  # e.g. gpt-3.5-turbo, a vLLM model name, or a hub id / folder for transformers
    teacher_base_url: str | None = None  # OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 for vLLM
    teacher_api_key_env: str = "OPENAI_API_KEY"  # the variable holding the key (the key itself never goes in params)
    temperature: float = 0.7
    samples_per_question: int = 1
    teacher_max_tokens: int = 512
    teacher_concurrency: int = 8
    teacher_batch_size: int = 8  # transformers teacher
    price_input_per_m: float = 0.0  # USD per 1M input tokens, for the cost column
    price_output_per_m: float = 0.0
    budget_usd: float | None = None  # stop cleanly before the run would spend more
    # students (03): any hub id / folder, causal or seq2seq; "smollm2-135m-gguf" = the embedded default
    student: str = "smollm2-135m-gguf"
    methods: list[str] = field(default_factory=lambda: ["CoTD", "PoTD", "EoTD", "ETD"])
    epochs: float = 1.0
    lr: float = 5e-5
    batch_size: int = 8
    grad_accum: int = 1
    max_source_len: int = 256
    max_target_len: int = 256
    checkpoint_every: int = 50  # optimizer steps
    # evaluation (04)
    eval_sets: list[str] = field(default_factory=lambda: [
        "gsm_symbolic_template", "gsm_symbolic_instance", "gsm8k_test", "svamp", "asdiv", "multiarith", "gsm_hard"])
    eval_limit: int | None = 50  # problems per set: a seeded sample, the same for every method; None = all
    max_new_tokens: int = 256
    eval_batch_size: int = 16
    evaluate_base: bool = True  # the untrained student, few-shot prompted, as the baseline
    base_shots: int = 4
    fallback_orders: list[list[str]] = field(default_factory=lambda: [["pot", "eot", "cot"]])
    vote_tie_order: list[str] = field(default_factory=lambda: ["pot", "eot", "cot"])
    # ablations (05): sizes come from the tier; the default runs a reduced grid that fits its hour
    ablation_thought_mixes: bool = True  # all 7 non-empty subsets of {cot, pot, eot}
    ablation_sizes: list[float] = field(default_factory=lambda: [0.25, 0.5, 1.0])  # fractions of the verified data
    ablation_size_methods: list[str] = field(default_factory=lambda: ["ETD"])
    ablation_eval_sets: list[str] = field(default_factory=lambda: ["gsm_symbolic_template", "gsm8k_test"])
    ablation_eval_limit: int | None = 30
    # verification (02)
    rationales_file: str | None = None  # JSONL of {question_id, kind, rationale, gold}; None = the synthesis output
    verify_timeout: float = 5.0  # seconds per PoT program / EoT system
    verify_memory_mb: int = 512

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _matches(value, hint) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_matches(v, item) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def validate(raw: dict, source: str) -> Params:
    """Build Params from a mapping, naming `source` and the key in every error."""
    hints = typing.get_type_hints(Params)
    unknown = sorted(set(raw) - set(hints))
    if unknown:
        raise ParamsError(f"{source}: unknown key(s) {unknown}; valid keys: {sorted(hints)}")
    for key, value in raw.items():
        if not _matches(value, hints[key]):
            raise ParamsError(f"{source}: key {key!r} must be {hints[key]}, got {value!r} ({type(value).__name__})")
    return Params(**raw)


def load(path: str | Path) -> Params:
    """Load params/<name>.yaml (absolute, relative to the cwd, or relative to the project root)."""
    path = Path(path)
    if not path.is_absolute() and not path.exists():
        path = paths.ROOT / path
    if not path.exists():
        raise ParamsError(f"{path}: no such params file; see {paths.PARAMS} for the tiers")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: must be a mapping of key: value, got {type(raw).__name__}")
    raw.setdefault("name", path.stem)
    if raw["name"] != path.stem:
        raise ParamsError(f"{path}: key 'name' is {raw['name']!r} but must match the file name {path.stem!r}")
    return validate(raw, str(path))


def from_namespace(namespace: dict, source: str = "the notebook's parameters cell") -> Params:
    """Params from a notebook's globals after papermill injected them (only the names Params knows are read)."""
    return validate({k: namespace[k] for k in typing.get_type_hints(Params) if k in namespace}, source)
