"""The evaluation sets of a run: seeded samples (the same for every method), decontaminated against the training
questions, with every set that could not be loaded listed with its reason (never silently dropped)."""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from eotd import data, decontaminate
from eotd.params import Params

GSM_SYMBOLIC = ("gsm_symbolic_template", "gsm_symbolic_instance")


@dataclass
class EvalSets:
    sets: dict[str, list[data.Problem]]  # headline sets, plus "<name>_overlap" for items found in the training data
    unavailable: dict[str, str] = field(default_factory=dict)  # set -> why it could not be loaded
    contamination: list[dict] = field(default_factory=list)  # decontaminate.report() per benchmark set


def _gsm_symbolic(name: str, p: Params, train: list[data.Problem]) -> list[data.Problem]:
    """Held-out templates, or unseen instances of the training templates (in-distribution by design, so these two
    are not decontaminated: their questions share templates with training by construction, never the same text)."""
    n = p.eval_limit or 500
    if name == "gsm_symbolic_template":
        return list(data.load_gsm_symbolic(n, p.seed, "test", "template", p.gsm_symbolic_test_fraction))
    train_templates, _ = data.gsm_symbolic_templates(p.seed, p.gsm_symbolic_test_fraction)
    seen = {pr.question for pr in train}
    pool = data.load_gsm_symbolic(8 * n, p.seed, "test", "instance", p.gsm_symbolic_test_fraction)
    return [pr for pr in pool if data.gsm_symbolic_template(pr) in train_templates and pr.question not in seen][:n]


def _sample(problems: list[data.Problem], limit: int | None, seed: int) -> list[data.Problem]:
    if not limit or limit >= len(problems):
        return list(problems)
    return sorted(random.Random(seed).sample(problems, limit), key=problems.index)


def load(p: Params, train: list[data.Problem]) -> EvalSets:
    """Every set named in p.eval_sets, sampled to p.eval_limit and split into clean / overlapping with `train`."""
    result = EvalSets({})
    for name in p.eval_sets:
        try:
            if name in GSM_SYMBOLIC:
                result.sets[name] = _gsm_symbolic(name, p, train)
                continue
            problems = _sample(list(data.load(name, p.data_dir)), p.eval_limit, p.seed)
        except Exception as exc:  # noqa: BLE001 - a missing set is reported, not fatal
            result.unavailable[name] = f"{type(exc).__name__}: {exc}"
            continue
        overlaps = decontaminate.find_overlaps(train, problems)
        clean, overlapping = decontaminate.split_clean(problems, overlaps)
        result.sets[name] = clean
        if overlapping:
            result.sets[f"{name}_overlap"] = overlapping
        result.contamination.append(decontaminate.report(p.train_dataset, name, overlaps))
    return result
