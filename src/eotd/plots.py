"""Seaborn figures the notebooks show and save as PNG."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

sns.set_theme(style="whitegrid", context="notebook")


def save(fig: plt.Figure, path: str | Path) -> Path:
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return Path(path)


def verdicts(per_type: dict[str, dict], title: str) -> plt.Figure:
    """Bar chart of verdict reasons per thought type, from {type: {"reasons": {reason: count}}} summaries."""
    counts = pd.DataFrame(
        [{"thought": t, "reason": r, "count": n} for t, s in per_type.items() for r, n in s["reasons"].items()]
    )
    fig, ax = plt.subplots(figsize=(8, 3.5))
    sns.barplot(data=counts, x="reason", y="count", hue="thought", ax=ax)
    ax.set(xlabel="verdict", ylabel="rationales (log)", yscale="log", title=title)
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return fig
