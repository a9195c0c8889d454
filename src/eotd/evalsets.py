"""The evaluation sets of a run: seeded samples (the same for every method), decontaminated against the training
questions. A set that cannot be loaded is an error, or with skip_missing_sets listed with its reason."""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable

from eotd import data, decontaminate
from eotd.protocol import GSM_SYMBOLIC, OVERLAP_SUFFIX
from eotd.params import Params


class EvalSetError(RuntimeError):
    """A named evaluation set that cannot be loaded (and skip_missing_sets is off)."""


def check_available(p: Params, names: list[str] | None = None) -> dict[str, str]:
    """Load every named benchmark once (before anything runs): set -> why it cannot be loaded. Raises EvalSetError
    naming the sets, the data folder and what to do, unless p.skip_missing_sets."""
    missing = {}
    for name in dict.fromkeys(names if names is not None else [*p.eval_sets, *p.ablation_eval_sets]):
        if name in GSM_SYMBOLIC:
            continue
        try:
            data.load(name, p.data_dir)
        except Exception as exc:  # noqa: BLE001 - every failure is reported with its set
            missing[name] = f"{type(exc).__name__}: {exc}"
    if missing and not p.skip_missing_sets:
        lines = "\n".join(f"  - {k}: {v}" for k, v in missing.items())
        raise EvalSetError(f"params {p.name!r}: {len(missing)} evaluation set(s) cannot be loaded:\n{lines}\n"
                           "Point EOTD_DATA_DIR (or data_dir) at a folder laid out like shared/data, fix the set "
                           "name, or set skip_missing_sets: true to evaluate the others.")
    return missing


@dataclass
class EvalSets:
    sets: dict[str, list[data.Problem]]  # headline sets, plus "<name>_overlap" for items found in the training data
    unavailable: dict[str, str] = field(default_factory=dict)  # set -> why it could not be loaded
    contamination: list[dict] = field(default_factory=list)  # decontaminate.report() per benchmark set

    def questions(self) -> dict[tuple[str, str], str]:
        """(set, problem id) -> question text, to show next to what a student wrote."""
        return {(name, pr.id): pr.question for name, problems in self.sets.items() for pr in problems}


GSM_SYMBOLIC_SIZE = 500  # problems drawn from a generated GSM-Symbolic set when no limit is given (it has no "all")


def _instances(p: Params, train: list[data.Problem]) -> list[data.Problem]:
    """Unseen instances of the training templates (in-distribution by design, so not decontaminated: their questions
    share templates with training by construction, never the same text)."""
    n = limit(p, "gsm_symbolic_instance") or GSM_SYMBOLIC_SIZE
    train_templates, _ = data.gsm_symbolic_templates(p.seed, p.gsm_symbolic_test_fraction)
    seen = {pr.question for pr in train}
    # Training drew the first problems of the same stream, so look further along it until n unseen ones are found.
    size = 8 * n
    while True:
        pool = data.load_gsm_symbolic(size, p.seed, "test", "instance", p.gsm_symbolic_test_fraction)
        found = [pr for pr in pool if data.gsm_symbolic_template(pr) in train_templates and pr.question not in seen]
        if len(found) >= n or size > 64 * (n + len(train)):
            return found[:n]
        size *= 2


def limit(p: Params, name: str) -> int | None:
    """Problems to evaluate from set `name`: its eval_limits entry, else eval_limit (None = all)."""
    return p.eval_limits.get(name, p.eval_limit)


def _sample(problems: list[data.Problem], limit: int | None, seed: int) -> list[data.Problem]:
    if not limit or limit >= len(problems):
        return list(problems)
    return sorted(random.Random(seed).sample(problems, limit), key=problems.index)


def _decontaminated(sample: list[data.Problem], more: Callable[[int], list[data.Problem]],
                    train: list[data.Problem]):
    """The sample's items that overlap the training questions set aside (reported as <set>_overlap), and its clean
    part topped up with the clean ones of more(k), candidates for the k set aside, so the headline set keeps its
    size. Returns (clean, overlapping, the sample's find_overlaps rows)."""
    overlaps = decontaminate.find_overlaps(train, sample)
    clean, overlapping = decontaminate.split_clean(sample, overlaps)
    if overlapping:
        extra = more(len(overlapping))
        extra_clean, _ = decontaminate.split_clean(extra, decontaminate.find_overlaps(train, extra))
        clean += extra_clean[:len(overlapping)]
    return clean, overlapping, overlaps


def _benchmark(p: Params, name: str, train: list[data.Problem]):
    """A benchmark's seeded sample, decontaminated and topped up from a seeded sample of the rest, in the set's
    order."""
    problems = list(data.load(name, p.data_dir))
    sample = _sample(problems, limit(p, name), p.seed)
    chosen = {pr.id for pr in sample}
    rest = [pr for pr in problems if pr.id not in chosen]
    clean, overlapping, overlaps = _decontaminated(sample, lambda k: _sample(rest, 2 * k + 8, p.seed), train)
    position = {pr.id: i for i, pr in enumerate(problems)}
    return sorted(clean, key=lambda pr: position[pr.id]), overlapping, overlaps


def _templates(p: Params, name: str, train: list[data.Problem]):
    """The held-out GSM-Symbolic templates (written from GSM8K test questions): the first problems of their stream,
    decontaminated and topped up from further along it (the stream is prefix-stable)."""
    n = limit(p, name) or GSM_SYMBOLIC_SIZE

    def draw(size: int) -> list[data.Problem]:
        return list(data.load_gsm_symbolic(size, p.seed, "test", "template", p.gsm_symbolic_test_fraction))

    return _decontaminated(draw(n), lambda k: draw(n + 2 * k + 8)[n:], train)


IN_DOMAIN, OUT_OF_DOMAIN = "in-domain", "out-of-domain"
DERIVED_FROM = {"gsm_symbolic_template": "gsm8k_test", "gsm_symbolic_instance": "gsm8k_test",
                "gsm_hard": "gsm8k_test"}  # sets written from another benchmark's test questions


def domains(p: Params) -> dict[str, str]:
    """Each evaluation set as in-domain (its own training fold, or its training split, is in the training data:
    train_extra, GSM8K train for GSM8K test, the training templates for their unseen instances), else "derived from
    <set>" (written from that benchmark's test questions: GSM-Symbolic and GSM-Hard from GSM8K test), else
    out-of-domain."""
    own = {"gsm8k_train": "gsm8k_test", "gsm_symbolic": "gsm_symbolic_instance"}.get(p.train_dataset)

    def domain(name: str) -> str:
        if name in p.train_extra or name == own:
            return IN_DOMAIN
        return f"derived from {DERIVED_FROM[name]}" if name in DERIVED_FROM else OUT_OF_DOMAIN

    return {name: domain(name) for name in p.eval_sets}


def training_fold(p: Params, name: str, count: int | None) -> list[data.Problem]:
    """A benchmark's training fold (params train_extra): its problems minus its own evaluation sample (the seeded
    sample `load` draws) and minus every near-duplicate of an item in the evaluation sample of any benchmark of
    p.eval_sets; then a seeded sample of `count`. (A top-up in `load` checks its candidates against the training
    questions, so it never takes a fold item.)"""
    problems = list(data.load(name, p.data_dir))
    held_out: list[data.Problem] = []
    for other in dict.fromkeys([*p.eval_sets, *p.ablation_eval_sets]):
        if other in GSM_SYMBOLIC:
            continue
        pool = problems if other == name else list(data.load(other, p.data_dir))
        held_out += _sample(pool, limit(p, other), p.seed)
    chosen = {pr.id for pr in held_out if pr.dataset == name}
    rest = [pr for pr in problems if pr.id not in chosen]
    near = decontaminate.near_duplicates_of(held_out, rest)
    clean = [pr for pr in rest if pr.id not in near]
    if p.teacher == "annotation":  # it can only rewrite problems whose record carries an equation that converts
        clean = [pr for pr in clean if pr.solution]
    return _sample(clean, count, p.seed)


def train_set_names(p: Params) -> str:
    """Every source of the training questions, as the contamination table names them."""
    return " + ".join([p.train_dataset, *(f"{name} (training fold)" for name in p.train_extra)])


def load(p: Params, train: list[data.Problem]) -> EvalSets:
    """Every set named in p.eval_sets, sampled to its limit and split into clean / overlapping with `train`."""
    result = EvalSets({})
    for name in p.eval_sets:
        try:
            if name == "gsm_symbolic_instance":
                result.sets[name] = _instances(p, train)
                continue
            sample = _templates if name == "gsm_symbolic_template" else _benchmark
            clean, overlapping, overlaps = sample(p, name, train)
        except Exception as exc:  # noqa: BLE001 - reported with the set; fatal unless skip_missing_sets
            if not p.skip_missing_sets:
                raise EvalSetError(f"evaluation set {name!r} cannot be loaded: {type(exc).__name__}: {exc}. Point "
                                   "EOTD_DATA_DIR at a folder laid out like shared/data, or set skip_missing_sets: "
                                   "true") from exc
            result.unavailable[name] = f"{type(exc).__name__}: {exc}"
            continue
        result.sets[name] = clean
        if overlapping:
            result.sets[name + OVERLAP_SUFFIX] = overlapping
        result.contamination.append(decontaminate.report(train_set_names(p), name, overlaps))
    return result
