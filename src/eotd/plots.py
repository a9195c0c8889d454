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


def verdict_reasons(verified: pd.DataFrame) -> plt.Figure:
    """Bar chart: how many rationales of each thought type ended with each verdict reason."""
    counts = verified.groupby(["kind", "reason"]).size().rename("count").reset_index()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    sns.barplot(data=counts, x="reason", y="count", hue="kind", ax=ax)
    ax.set(xlabel="verdict", ylabel="rationales", title="Verification verdicts by thought type")
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return fig
