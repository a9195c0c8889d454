"""How students see a problem: the paper's input format and thought-type triggers, and the training methods."""
from __future__ import annotations

# The ETD model card's triggers, verbatim (note the curly apostrophe in the PoT one).
TRIGGERS = {
    "cot": "Let's think step by step.",
    "pot": "Let’s break down the code step by step",
    "eot": "System of linear equations: (Do not simplify)",
}
# Which thought types each distillation method trains on.
METHODS = {"CoTD": ("cot",), "PoTD": ("pot",), "EoTD": ("eot",), "ETD": ("cot", "pot", "eot")}


def student_input(question: str, thought: str) -> str:
    """`Question: <q>\\n<trigger>\\n`, the input every student is trained and evaluated on."""
    return f"Question: {question.strip()}\n{TRIGGERS[thought]}\n"
