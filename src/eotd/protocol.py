"""The study's protocol, in one place: thought types and their triggers, the distillation methods and the training
split each learns from, the strategy each method is scored at, the accuracy table's columns and the files of a
trained student."""
from __future__ import annotations

import itertools

THOUGHTS = ("cot", "pot", "eot")
THOUGHT_LABELS = {"cot": "CoT", "pot": "PoT", "eot": "EoT"}
# The ETD model card's triggers, verbatim (note the curly apostrophe in the PoT one).
TRIGGERS = {
    "cot": "Let's think step by step.",
    "pot": "Let’s break down the code step by step",
    "eot": "System of linear equations: (Do not simplify)",
}
# Which thought types each distillation method trains on, and which split of 01's training data holds them.
METHODS = {"CoTD": ("cot",), "PoTD": ("pot",), "EoTD": ("eot",), "ETD": THOUGHTS}
ETD_SPLIT = "etd"  # every verified rationale of every type
TRAIN_SPLIT = {"CoTD": "cot", "PoTD": "pot", "EoTD": "eot", "ETD": ETD_SPLIT}
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
HEADLINE_STRATEGY = {"CoTD": "cot", "PoTD": "pot", "EoTD": "eot", "ETD": fallback_strategy(DEFAULT_FALLBACK)}
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
