"""One params file per run (params/<name>.yaml), loaded and validated here.

Every key is a field of `Params`; an unknown key or a value of the wrong type is an error naming the key and the file.
A stage notebook's `parameters` cell names the file (`name = "default"`) and may list explicit `overrides`;
`for_notebook` loads and validates both, and papermill sets them with `-p name smoke`.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from eotd import paths, protocol
from eotd.train_config import MIXED_PRECISION, TRAIN_RANGES, TrainConfig


class ParamsError(ValueError):
    pass


@dataclass(frozen=True, kw_only=True)
class Params(TrainConfig):
    """A run's settings. The training keys (epochs, lr, batch_tokens, ..., seed) are TrainConfig's fields, declared
    and documented in eotd.train_config; the rest are declared here, stage by stage."""
    name: str  # results go to results/<name>/; defaults to the file's stem
    data_dir: str | None = None  # local benchmark copy; None = EOTD_DATA_DIR, else the HF hub
    thought_types: list[str] = field(default_factory=lambda: list(protocol.THOUGHTS))
    # data synthesis (01)
    train_dataset: str = "gsm_symbolic"  # "gsm_symbolic" (reasoning-gym, offline) or a loader name like "gsm8k_train"
    train_questions: int | None = None  # a seeded sample of this many training questions; None = all
    # benchmark training folds added to the training questions: set -> questions (None = the whole fold). A fold is
    # the set minus its evaluation sample and every near-duplicate of an evaluated item; the annotation teacher
    # converts the set's own equations (SVAMP Equation, MultiArith lEquations, ASDiv Formula). Makes the set in-domain.
    train_extra: dict[str, int | None] = field(default_factory=dict)
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
    teacher_timeout: float = 120.0  # seconds per request (each is retried a few times with backoff)
    teacher_max_retries: int = 6
    teacher_batch_size: int = 8  # transformers teacher
    price_input_per_m: float = 0.0  # USD per 1M input tokens, for the cost column
    price_output_per_m: float = 0.0
    budget_usd: float | None = None  # stop cleanly before the run would spend more
    # students (03): any hub id / folder, causal or seq2seq; "smollm2-135m-gguf" = the embedded default
    student: str = "smollm2-135m-gguf"
    methods: list[str] = field(default_factory=lambda: list(protocol.MAIN_METHODS))
    etd_data: str = "union"  # "union": every verified rationale of every type (the paper); "one_per_question": ETD
    # sees each question once, types dealt round-robin: the same training budget as CoTD/PoTD/EoTD
    # training seeds (data order) per method: {PoTD: [0, 1, 2]}; a method not named trains once, with `seed`
    train_seeds: dict[str, list[int]] = field(default_factory=dict)
    # each student trains in a process of its own (~5 s to start), so 03's memory stays flat across students; false
    # trains them all in the notebook's kernel. Runs under `accelerate launch` always train in their own processes.
    isolate_students: bool = True
    # evaluation (04)
    eval_sets: list[str] = field(default_factory=lambda: [
        "gsm_symbolic_template", "gsm_symbolic_instance", "gsm8k_test", "svamp", "asdiv", "multiarith", "gsm_hard"])
    eval_limit: int | None = 50  # problems per set: a seeded sample, the same for every method; None = all
    eval_limits: dict[str, int] = field(default_factory=dict)  # per-set overrides of eval_limit
    skip_missing_sets: bool = False  # a named set that cannot be loaded is an error, unless this is true
    max_new_tokens: int = 256  # cap; each thought type gets its longest training rationale + 25% (generation.token_budget)
    eval_batch_size: int = 16  # most prompts per generation batch
    eval_batch_tokens: int | None = None  # token budget per generation batch: prompts x (longest prompt + new tokens)
    student_base_url: str | None = None  # evaluate through an OpenAI-compatible completions endpoint (vllm serve ...)
    student_model: str = "{method}"  # the served model name: {method} -> CoTD, ..., base; {seed}; {label} -> PoTD@1
    student_api_key_env: str = "OPENAI_API_KEY"  # not needed on loopback
    student_concurrency: int = 8
    evaluate_base: bool = True  # the untrained student, few-shot prompted, as the baseline
    base_shots: int = 4
    base_thoughts: list[str] = field(default_factory=lambda: list(protocol.THOUGHTS))  # the baseline's prompts
    fallback_orders: list[list[str]] = field(default_factory=lambda: [list(protocol.DEFAULT_FALLBACK)])
    etd_generation: str = "all"  # "all": every trigger on every problem (ETD's per-trigger, fallback and vote rows);
    # "fallback": a thought only where a fallback order reaches it (the same fallback rows, about a third of the work)
    vote_tie_order: list[str] = field(default_factory=lambda: list(protocol.DEFAULT_FALLBACK))
    # ablations (05): sizes come from the tier; the default runs a reduced grid that fits its hour
    ablation_thought_mixes: bool = True  # all 7 non-empty subsets of {cot, pot, eot}
    ablation_sizes: list[float] = field(default_factory=lambda: [0.25, 0.5, 1.0])  # fractions of the verified data
    ablation_size_methods: list[str] = field(default_factory=lambda: ["ETD"])
    ablation_style_methods: list[str] = field(default_factory=list)  # e.g. [PoTD, EoTD]: retrain on commented rationales
    ablation_eval_sets: list[str] = field(default_factory=lambda: ["gsm_symbolic_template", "gsm8k_test"])
    ablation_eval_limit: int | None = 30
    # verification (02)
    # JSONL of {question_id, question, thought, rationale, gold}: verified and trained on instead of 01's rationales
    rationales_file: str | None = None
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


def _choices() -> dict[str, tuple]:
    """The allowed values of the keys that name things (lists are checked item by item)."""
    from eotd import data

    sets = tuple(protocol.GSM_SYMBOLIC) + tuple(data.DATASETS)
    thoughts, methods = protocol.THOUGHTS, tuple(protocol.METHODS)
    return {"thought_types": thoughts, "methods": methods, "eval_sets": sets,
            "ablation_eval_sets": sets, "eval_limits": sets, "ablation_size_methods": methods,
            "ablation_style_methods": ("PoTD", "EoTD"), "fallback_orders": thoughts,
            "vote_tie_order": thoughts, "base_thoughts": thoughts, "etd_data": ("union", "one_per_question"),
            "etd_generation": ("all", "fallback"),
            "gsm_symbolic_split": ("template", "instance"), "teacher": ("annotation", "openai", "transformers"),
            "mixed_precision": MIXED_PRECISION,
            "train_dataset": ("gsm_symbolic",) + tuple(data.DATASETS),
            "train_extra": tuple(n for n in data.DATASETS if data.has_equations(n)), "train_seeds": methods}


# key -> (lowest allowed, highest allowed); None values mean "all"/"off" where the key's type allows None
_RANGES = {**TRAIN_RANGES, "train_questions": (1, None), "samples_per_question": (1, None),
           "eval_limit": (1, None), "ablation_eval_limit": (1, None), "max_new_tokens": (1, None),
           "eval_batch_size": (1, None), "eval_batch_tokens": (1, None), "base_shots": (0, 8),
           "verify_timeout": (1e-3, 600), "verify_memory_mb": (32, 65536), "teacher_concurrency": (1, 256),
           "teacher_timeout": (0.1, 3600), "student_concurrency": (1, 256), "teacher_max_retries": (0, 20),
           "teacher_batch_size": (1, None), "teacher_max_tokens": (1, None), "temperature": (0, 5),
           "gsm_symbolic_test_fraction": (1e-9, 1 - 1e-9)}


def _check_values(p: Params, source: str) -> None:
    for key, allowed in _choices().items():
        value = getattr(p, key)
        items = [value] if isinstance(value, str) else list(value or [])
        if key == "fallback_orders":
            items = [t for order in value for t in order]
        bad = [v for v in items if v not in allowed]
        if bad:
            raise ParamsError(f"{source}: key {key!r} has {bad[0]!r}, which is not one of {list(allowed)}")
    for key, (low, high) in _RANGES.items():
        value = getattr(p, key)
        if value is not None and ((low is not None and value < low) or (high is not None and value > high)):
            span = f"at least {low}" if high is None else f"between {low} and {high}"
            none = " (or null for all)" if key in ("train_questions", "eval_limit", "ablation_eval_limit") else ""
            raise ParamsError(f"{source}: key {key!r} must be {span}{none}, got {value!r}")
    for name, n in p.train_extra.items():
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
            raise ParamsError(f"{source}: train_extra[{name!r}] must be a whole number of at least 1 or null, got {n!r}")
    for method, seeds in p.train_seeds.items():
        if not isinstance(seeds, list) or not seeds or len(set(seeds)) != len(seeds) or \
                not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
            raise ParamsError(f"{source}: train_seeds[{method!r}] must be a non-empty list of distinct whole numbers, "
                              f"got {seeds!r}")
    for name, n in p.eval_limits.items():
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ParamsError(f"{source}: eval_limits[{name!r}] must be a whole number of at least 1, got {n!r}")
    if p.rationales_file and p.ablation_style_methods:
        raise ParamsError(f"{source}: ablation_style_methods rewrites the annotation teacher's rationales and cannot "
                          "rewrite a rationales_file; set ablation_style_methods: [] with rationales_file")
    if protocol.FORWARD_EOT_METHOD in p.methods and (p.teacher != "annotation" or p.rationales_file):
        raise ParamsError(f"{source}: method {protocol.FORWARD_EOT_METHOD!r} trains on the annotation teacher's forward "
                          "EoT; it needs teacher: annotation and no rationales_file")
    for fraction in p.ablation_sizes:
        if not 0 < fraction <= 1:
            raise ParamsError(f"{source}: key 'ablation_sizes' holds {fraction!r}; fractions must be in (0, 1]")


def validate(raw: dict, source: str) -> Params:
    """Build Params from a mapping, naming `source` and the key in every error; names are checked against the known
    sets, methods and thought types, numbers against their ranges."""
    hints = typing.get_type_hints(Params)
    unknown = sorted(set(raw) - set(hints))
    if unknown:
        raise ParamsError(f"{source}: unknown key(s) {unknown}; valid keys: {sorted(hints)}")
    for key, value in raw.items():
        if not _matches(value, hints[key]):
            raise ParamsError(f"{source}: key {key!r} must be {hints[key]}, got {value!r} ({type(value).__name__})")
    p = Params(**raw)
    _check_values(p, source)
    return p


def locate(path: str | Path) -> Path:
    """A params file's absolute path: as given when absolute, else relative to the cwd if it is there, else to the
    project root."""
    path = Path(path).expanduser()
    if not path.is_absolute() and not path.exists():
        path = paths.ROOT / path
    return path.resolve()


def load(path: str | Path) -> Params:
    """Load params/<name>.yaml (absolute, relative to the cwd, or relative to the project root)."""
    path = locate(path)
    if not path.exists():
        raise ParamsError(f"{path}: no such params file; see {paths.PARAMS} for the tiers")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: must be a mapping of key: value, got {type(raw).__name__}")
    raw.setdefault("name", path.stem)
    if raw["name"] != path.stem:
        raise ParamsError(f"{path}: key 'name' is {raw['name']!r} but must match the file name {path.stem!r}")
    return validate(raw, str(path))


def source(name: str) -> Path:
    """The params file a run name stands for: params/<name>.yaml, or `name` itself when it is a YAML path."""
    return locate(name) if str(name).endswith((".yaml", ".yml")) else paths.PARAMS / f"{name}.yaml"


def for_notebook(name: str, overrides: dict | None = None) -> Params:
    """A stage notebook's params: params/<name>.yaml (or the params file at the path `name`), with `overrides` on top,
    validated like the file. A notebook run top to bottom in JupyterLab therefore uses exactly what `make study`
    uses for that tier, and any difference is spelled out in `overrides`."""
    path = source(name)
    p = load(path)
    if not overrides:
        return p
    if not isinstance(overrides, dict):
        raise ParamsError(f"overrides must be a mapping of key: value, got {type(overrides).__name__}")
    if overrides.get("name", p.name) != p.name:
        raise ParamsError(f"overrides cannot rename the run ({overrides['name']!r}): results/{p.name}/ belongs to "
                          f"{path}; write a params file for a new run instead")
    return validate({**p.to_dict(), **overrides}, f"{path} with overrides {sorted(overrides)}")
