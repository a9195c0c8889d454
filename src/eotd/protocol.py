"""The study's protocol, in one place: thought types and their triggers, the distillation methods and the training
split each learns from, the strategy each method is scored at (and how an accuracy table's headline strategies are
picked), the accuracy table's columns and the files of a trained student."""
from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

THOUGHTS = ("cot", "pot", "eot")
THOUGHT_LABELS = {"cot": "CoT", "pot": "PoT", "eot": "EoT"}
# The ETD model card's triggers, verbatim (note the curly apostrophe in the PoT one).
TRIGGERS = {
    "cot": "Let's think step by step.",
    "pot": "Let’s break down the code step by step",
    "eot": "System of linear equations: (Do not simplify)",
}
# Which thought types each distillation method trains on, and which split of 02's training data holds them.
# EoTD-forward is EoTD trained on the forward EoT of the same questions (the gold calculation spelled as equations,
# the result as the unknown) instead of the relations the question states: EoTD minus EoTD-forward isolates what
# stating relations does. Only the annotation teacher writes both forms.
FORWARD_EOT_METHOD = "EoTD-forward"
METHODS = {"CoTD": ("cot",), "PoTD": ("pot",), "EoTD": ("eot",), "ETD": THOUGHTS, FORWARD_EOT_METHOD: ("eot",)}
MAIN_METHODS = ("CoTD", "PoTD", "EoTD", "ETD")  # the paper's four, a tier's default
ETD_SPLIT = "etd"  # every verified rationale of every type
FORWARD_EOT_SPLIT = "eot_forward"
TRAIN_SPLIT = {"CoTD": "cot", "PoTD": "pot", "EoTD": "eot", "ETD": ETD_SPLIT, FORWARD_EOT_METHOD: FORWARD_EOT_SPLIT}
BASELINE = "base"  # the untrained student, prompted
METHOD_ORDER = (BASELINE, *METHODS)
# The thought-mix ablation's students: every non-empty subset of the thought types, smallest first.
THOUGHT_MIXES = tuple(mix for k in range(1, len(THOUGHTS) + 1) for mix in itertools.combinations(THOUGHTS, k))

# Test-time strategies: each thought alone, a fallback chain (the next thought when one gives no answer), a vote.
DEFAULT_FALLBACK = ("pot", "eot", "cot")
VOTE = "vote"


def fallback_strategy(order) -> str:
    """The strategy name of a fallback chain: ("pot", "eot", "cot") -> "fallback:pot>eot>cot"."""
    return "fallback:" + ">".join(order)


# The strategy each method's headline number is read at: its trained trigger; ETD at the fallback chain of paper §4's
# candidate (b) (the paper's own rule is unknown, so this is our choice).
HEADLINE_STRATEGY = {"CoTD": "cot", "PoTD": "pot", "EoTD": "eot", "ETD": fallback_strategy(DEFAULT_FALLBACK),
                     FORWARD_EOT_METHOD: "eot"}
ACCURACY_COLUMNS = ["dataset", "method", "strategy", "n", "correct", "accuracy", "ci_low", "ci_high"]
SEED_COLUMNS = ["dataset", "method", "strategy", "seed", "n", "correct", "accuracy"]
OVERLAP_SUFFIX = "_overlap"  # <set>_overlap: benchmark items found in the training data, never in a headline
# The GSM-Symbolic evaluation sets: held-out templates, or unseen instances of the training templates.
GSM_SYMBOLIC = ("gsm_symbolic_template", "gsm_symbolic_instance")
PAPER_BENCHMARKS = ("gsm8k_test", "svamp", "asdiv", "multiarith")  # the paper's evaluation: tables lead with these

# A trained student's folder: final/ (a transformers folder), done.json (config, data hash, losses, timings) and,
# while training, checkpoint/.
FINAL_DIR = "final"
DONE_FILE = "done.json"
CHECKPOINT_DIR = "checkpoint"


def student_label(method: str, seed: int) -> str:
    """The label of one trained student: its method and training seed, "PoTD@1"."""
    return f"{method}@{seed}"


def split_label(label: str) -> tuple[str, int | None]:
    """"PoTD@1" -> ("PoTD", 1); a label without a seed (the untrained base, an ablation variant) -> (label, None)."""
    method, at, seed = label.rpartition("@")
    return (method, int(seed)) if at and seed.lstrip("-").isdigit() else (label, None)


def student_input(question: str, thought: str) -> str:
    """`Question: <q>\\n<trigger>\\n`, the input every student is trained and evaluated on."""
    return f"Question: {question.strip()}\n{TRIGGERS[thought]}\n"


# --- the headline: which rows of an accuracy table a headline number reads ----------------------------------------
# Used by the evaluation, the README, the summaries and the figures; pandas only arrives with the tables passed in.

def require_columns(frame: pd.DataFrame, columns: list[str], source: str) -> None:
    """A clear error naming the file and the missing columns, instead of a KeyError deep inside pandas/seaborn."""
    if frame is None or len(frame) == 0:
        raise ValueError(f"{source} is empty")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{source} lacks column(s) {missing}; it has {list(frame.columns)}")


def is_headline(dataset: str) -> bool:
    """`*_overlap` rows are the items removed by decontamination: reported apart, never in the headline."""
    return not str(dataset).endswith(OVERLAP_SUFFIX)


def method_order(methods) -> list[str]:
    present = list(dict.fromkeys(methods))
    return [m for m in METHOD_ORDER if m in present] + sorted(m for m in present if m not in METHOD_ORDER)


def pick_strategy(strategies: set[str], thoughts: list[str]) -> str | None:
    """The strategy a student is read at: its one trigger, else ETD's headline fallback, else any fallback, else
    vote, else the only strategy there is."""
    if len(thoughts) == 1 and thoughts[0] in strategies:
        return thoughts[0]
    if HEADLINE_STRATEGY["ETD"] in strategies:
        return HEADLINE_STRATEGY["ETD"]
    fallbacks = sorted(s for s in strategies if s.startswith("fallback:"))
    if fallbacks:
        return fallbacks[0]
    if VOTE in strategies:
        return VOTE
    return next(iter(sorted(strategies))) if len(strategies) == 1 else None


def headline_strategies(acc: pd.DataFrame, strategy_for: dict[str, str] | None = None) -> dict[str, str]:
    """One strategy per method: `strategy_for` first, then the trained trigger (CoTD/PoTD/EoTD), ETD's fallback chain
    (else another fallback, else vote), and for base (or an unknown method) its best single strategy by pooled accuracy
    over the headline datasets all candidates share, which favours the baseline (chosen on the test sets)."""
    require_columns(acc, ACCURACY_COLUMNS, "accuracy.csv")
    strategy_for = strategy_for or {}
    chosen = {}
    headline = acc[acc["dataset"].map(is_headline)]
    for method in method_order(acc["method"]):
        rows = headline[headline["method"] == method]
        present = sorted(rows["strategy"].unique())
        pick = strategy_for.get(method) or HEADLINE_STRATEGY.get(method)
        if method == "ETD" and pick not in present and method not in strategy_for:
            pick = pick_strategy(set(present), [])
        if pick not in present:
            if method in strategy_for:
                raise ValueError(f"accuracy.csv has no strategy {pick!r} for method {method!r}; it has {present}")
            singles = rows[rows["strategy"].isin(THOUGHTS)] if rows["strategy"].isin(THOUGHTS).any() else rows
            if singles.empty:
                continue
            # Compare on the datasets every candidate was scored on, pooled over questions.
            per_set = singles.groupby("dataset")["strategy"].nunique()
            common = per_set.index[per_set == singles["strategy"].nunique()]
            if len(common):
                singles = singles[singles["dataset"].isin(common)]
            pooled = singles.groupby("strategy")[["correct", "n"]].sum()
            pick = (pooled["correct"] / pooled["n"]).idxmax()
        chosen[method] = pick
    return chosen


def all_forms(comparisons: pd.DataFrame) -> pd.Series:
    """The rows of method_comparisons.csv over every problem of a set (form "all"; a file without forms has only
    those), not the ones restricted to a question form."""
    import pandas as pd

    return comparisons["form"].eq("all") if "form" in comparisons else pd.Series(True, index=comparisons.index)
