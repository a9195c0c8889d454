"""Seaborn figures the notebooks show and save as PNG."""
from __future__ import annotations

from importlib.resources import files
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


# --- results figures (06_plots) ---------------------------------------------------------------------------------
# Each reads one results/<tier>/ file as a DataFrame or dict and raises a ValueError naming the file and column when
# the input cannot make the figure, so a notebook cell fails with a sentence rather than a pandas KeyError.

import numpy as np  # noqa: E402
from matplotlib.ticker import PercentFormatter  # noqa: E402

from eotd.protocol import (  # noqa: E402
    ACCURACY_COLUMNS, THOUGHT_MIXES, all_forms, headline_strategies, is_headline, method_order, require_columns,
    split_label,
)
from eotd.tables import (  # noqa: E402
    ablation_headline, dataset_order, headline, run_params, setting_line, strategy_order,
)


def _percent_axis(ax, top: float = 1.0) -> None:
    """Accuracies stay fractions; only the tick labels read as percent. `top` below 1 fits the axis to the data."""
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1))
    ax.set_ylim(0, top)


def _fitted_top(*values) -> float:
    """An axis top a little above the highest value shown (at most 100 %), so accuracies of 1–27 % fill the plot."""
    highest = max(float(np.nanmax(np.asarray(v, dtype=float))) for v in values if len(v))
    return min(1.0, highest * 1.12 + 0.01)


def _errorbars(ax, x, y, low, high, color) -> None:
    """Asymmetric CI bars at given centres (NaN CIs draw nothing)."""
    y, low, high = (np.asarray(v, dtype=float) for v in (y, low, high))
    err = np.vstack([np.clip(y - low, 0, None), np.clip(high - y, 0, None)])
    ax.errorbar(x, y, yerr=np.nan_to_num(err), fmt="none", ecolor=color, elinewidth=1.2, capsize=3)


def accuracy_by_method(acc: pd.DataFrame, strategy_for: dict[str, str] | None = None,
                       by_seed: pd.DataFrame | None = None) -> plt.Figure:
    """Headline accuracy per dataset (no `_overlap`), one bar per method at its one strategy with its 95 % interval;
    with `by_seed` (accuracy_by_seed.csv), each training seed as a dot on its method's bar."""
    rows = headline(acc, strategy_for)
    if rows.empty:
        raise ValueError("accuracy.csv has no headline rows (only `_overlap` datasets?)")
    chosen = headline_strategies(acc, strategy_for)
    datasets = dataset_order(rows["dataset"])
    methods = method_order(rows["method"])
    seeds = pd.DataFrame(columns=["dataset", "method", "accuracy"])
    if by_seed is not None and len(by_seed):
        seeds = by_seed[(by_seed["strategy"] == by_seed["method"].map(chosen)) & by_seed["dataset"].isin(datasets)]
    fig, ax = plt.subplots(figsize=(max(4, 1.8 * len(datasets)) + 3, 4))  # + room for the legend
    sns.barplot(data=rows, x="dataset", y="accuracy", hue="method", order=datasets, hue_order=methods,
                errorbar=None, ax=ax, alpha=0.8)
    lookup = rows.set_index(["dataset", "method"])
    for method, bars in zip(methods, list(ax.containers)):  # errorbar() appends containers
        for bar in bars:
            centre = bar.get_x() + bar.get_width() / 2
            dataset = datasets[int(round(centre))]
            if (dataset, method) not in lookup.index:
                continue
            row = lookup.loc[(dataset, method)]
            _errorbars(ax, [centre], [row["accuracy"]], [row["ci_low"]], [row["ci_high"]], "0.2")
            dots = seeds[(seeds["dataset"] == dataset) & (seeds["method"] == method)]["accuracy"]
            if len(dots) > 1:
                offsets = np.linspace(-0.25, 0.25, len(dots)) * bar.get_width()
                ax.scatter(centre + offsets, dots, s=14, color="black", zorder=3, linewidths=0)
    # the axis fits the accuracies and seeds; an interval far above them (two seeds) runs off the top
    points = pd.concat([rows["accuracy"], seeds["accuracy"]]).astype(float)
    _percent_axis(ax, _fitted_top(points, rows["ci_high"].clip(upper=max(1.5 * points.max(), 0.05))))
    title = "Accuracy by method (headline strategy per method" + (
        "; dots: training seeds)" if len(seeds) else ")")
    ax.set(xlabel="dataset", ylabel="accuracy", title=title)
    ax.legend(title="method", labels=[f"{m} ({chosen[m]})" for m in methods],
              handles=ax.get_legend().legend_handles, fontsize="small", loc="upper left", bbox_to_anchor=(1, 1))
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    fig.tight_layout()
    return fig


VERDICT_COLORS = {"beats": "tab:green", "ahead": "tab:orange", "no clear difference": "0.45"}


def _verdict_kind(verdict: str) -> str:
    return "beats" if " beats " in verdict else "ahead" if " ahead of " in verdict else "no clear difference"


def method_differences(comparisons: pd.DataFrame) -> plt.Figure:
    """Forest plot of method_comparisons.csv: per headline dataset, every pair's difference A − B in points with its
    95 % interval, coloured by verdict (beats, ahead on one training seed, no clear difference)."""
    require_columns(comparisons, ["dataset", "a", "b", "diff", "diff_low", "diff_high", "verdict"],
                    "method_comparisons.csv")
    rows = comparisons[comparisons["dataset"].map(is_headline) & all_forms(comparisons)]
    datasets = dataset_order(rows["dataset"])
    pairs = list(dict.fromkeys(f"{a} − {b}" for a, b in zip(rows["a"], rows["b"])))
    fig, axes = plt.subplots(1, len(datasets), figsize=(3.2 * len(datasets) + 1.5, 0.35 * len(pairs) + 1.6),
                             sharey=True, squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        part = rows[rows["dataset"] == dataset]
        for _, r in part.iterrows():
            y = pairs.index(f"{r['a']} − {r['b']}")
            color = VERDICT_COLORS[_verdict_kind(r["verdict"])]
            ax.plot([100 * r["diff_low"], 100 * r["diff_high"]], [y, y], color=color, linewidth=2)
            ax.plot([100 * r["diff"]], [y], "o", color=color)
        ax.axvline(0, color="0.2", linewidth=0.8)
        ax.set(title=dataset, xlabel="difference (points)")
    axes[0][0].set_yticks(range(len(pairs)), pairs)
    axes[0][0].invert_yaxis()
    handles = [plt.Line2D([], [], color=c, marker="o", linewidth=2, label=k) for k, c in VERDICT_COLORS.items()]
    fig.legend(handles=handles, loc="upper center", ncol=3, fontsize="small", bbox_to_anchor=(0.5, 1.0))
    fig.suptitle("Differences between methods (A − B, 95 % interval over seeds and problems)", y=1.08)
    fig.tight_layout()
    return fig


def etd_strategies(acc: pd.DataFrame) -> plt.Figure:
    """ETD's accuracy under every strategy (each trigger, fallbacks, vote) per headline dataset, with CIs."""
    require_columns(acc, ACCURACY_COLUMNS, "accuracy.csv")
    rows = acc[(acc["method"] == "ETD") & acc["dataset"].map(is_headline)]
    if rows.empty:
        raise ValueError("accuracy.csv has no rows with method == 'ETD' on a headline dataset")
    datasets = list(dict.fromkeys(rows["dataset"]))
    present = set(rows["strategy"])
    strategies = strategy_order(present)
    fig, ax = plt.subplots(figsize=(max(4, 1.8 * len(datasets)) + 3, 4))  # + room for the legend
    sns.pointplot(data=rows, x="dataset", y="accuracy", hue="strategy", order=datasets, hue_order=strategies,
                  errorbar=None, dodge=0.4, linestyle="none", ax=ax)
    lookup = rows.set_index(["dataset", "strategy"])
    drawn = [line for line in ax.lines if len(line.get_xdata()) == len(datasets)]
    for strategy, line in zip(strategies, drawn):
        for x, dataset in zip(line.get_xdata(), datasets):
            if (dataset, strategy) in lookup.index:
                row = lookup.loc[(dataset, strategy)]
                _errorbars(ax, [x], [row["accuracy"]], [row["ci_low"]], [row["ci_high"]], line.get_color())
    _percent_axis(ax)
    sns.move_legend(ax, "upper left", bbox_to_anchor=(1, 1), fontsize="small")
    ax.set(xlabel="dataset", ylabel="accuracy", title="ETD: accuracy per inference strategy")
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    fig.tight_layout()
    return fig


def _ablation(ablation: pd.DataFrame, name: str) -> pd.DataFrame:
    rows = ablation_headline(ablation)
    rows = rows[rows["ablation"] == name].copy()
    if rows.empty:
        raise ValueError(f"ablation_accuracy.csv has no rows with ablation == {name!r}")
    return rows


def _size_method(variant: str) -> str:
    """'ETD 25%' -> 'ETD'; a bare '25%' names no method."""
    words = [w for w in str(variant).split() if not w.rstrip("%").replace(".", "").isdigit()]
    return " ".join(words) or "student"


def data_size_curves(ablation: pd.DataFrame) -> plt.Figure:
    """Accuracy vs number of training examples, one line per method, one panel per dataset."""
    rows = _ablation(ablation, "data_size")
    if rows["train_examples"].isna().any():
        raise ValueError("ablation_accuracy.csv: data_size rows need a train_examples value for the x axis")
    if "method" in rows.columns and rows["method"].notna().all():  # the student label: "ETD:25%" is an ETD point
        rows["method"] = rows["method"].astype(str).str.split(":").str[0]
    else:
        rows["method"] = rows["variant"].map(_size_method)
    rows["train_examples"] = rows["train_examples"].astype(float)
    datasets = list(dict.fromkeys(rows["dataset"]))
    methods = method_order(rows["method"])
    palette = dict(zip(methods, sns.color_palette(n_colors=len(methods))))
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.5 * len(datasets), 3.8), sharey=True, squeeze=False)
    spread = rows["train_examples"].max() / max(rows["train_examples"].min(), 1) >= 8
    for ax, dataset in zip(axes[0], datasets):
        part = rows[rows["dataset"] == dataset].sort_values("train_examples")
        sns.lineplot(data=part, x="train_examples", y="accuracy", hue="method", hue_order=methods, palette=palette,
                     marker="o", errorbar=None, ax=ax, legend=ax is axes[0][0])
        for method, group in part.groupby("method"):
            ax.fill_between(group["train_examples"], group["ci_low"], group["ci_high"], color=palette[method],
                            alpha=0.15, linewidth=0)
        if spread:
            ax.set_xscale("log")
        _percent_axis(ax)
        ax.set(xlabel="training examples", ylabel="accuracy", title=dataset)
    fig.suptitle("Data size ablation")
    fig.tight_layout()
    return fig


def rationale_style(ablation: pd.DataFrame) -> plt.Figure:
    """Accuracy of each method trained on executor-style vs commented rationales (same questions), per dataset."""
    rows = _ablation(ablation, "rationale_style")
    rows["style"] = rows["variant"].str.split().str[-1]
    rows["method"] = rows["variant"].str.split().str[0]
    datasets = list(dict.fromkeys(rows["dataset"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.5 * len(datasets), 3.8), sharey=True, squeeze=False)
    styles = ["executor", "commented"]
    for ax, dataset in zip(axes[0], datasets):
        part = rows[rows["dataset"] == dataset]
        methods = method_order(part["method"])
        sns.barplot(data=part, x="method", y="accuracy", hue="style", order=methods, hue_order=styles, ax=ax,
                    errorbar=None, legend=ax is axes[0][0])
        for container, style in zip(ax.containers, styles):
            for bar, method in zip(container, methods):
                hit = part[(part["method"] == method) & (part["style"] == style)]
                if len(hit):
                    centre = bar.get_x() + bar.get_width() / 2
                    _errorbars(ax, [centre], hit["accuracy"], hit["ci_low"], hit["ci_high"], "0.2")
        _percent_axis(ax)
        ax.set(xlabel="", ylabel="accuracy", title=dataset)
    fig.suptitle("Rationale style: executor-style vs commented with computed numbers (same questions)")
    fig.tight_layout()
    return fig


def thought_mix_heatmap(ablation: pd.DataFrame) -> plt.Figure:
    """Accuracy of each thought-type subset (rows) on each dataset (columns), annotated in percent."""
    rows = _ablation(ablation, "thought_mix")
    grid = rows.pivot(index="variant", columns="dataset", values="accuracy")
    mixes = ["+".join(mix) for mix in THOUGHT_MIXES]
    order = [v for v in mixes if v in grid.index] + sorted(set(grid.index) - set(mixes))
    grid = grid.loc[order, list(dict.fromkeys(rows["dataset"]))]
    fig, ax = plt.subplots(figsize=(1.6 * grid.shape[1] + 2.5, 0.5 * grid.shape[0] + 1.5))
    sns.heatmap(grid, annot=True, fmt=".1%", cmap="viridis", vmin=0, vmax=1, ax=ax,
                cbar_kws={"format": PercentFormatter(xmax=1), "label": "accuracy"})
    ax.set(xlabel="dataset", ylabel="thought mix", title="Thought-mix ablation (multi-thought rows: fallback/vote)")
    fig.tight_layout()
    return fig


def loss_curves(losses: pd.DataFrame) -> plt.Figure:
    """Training loss per optimisation step: one panel per method (or ablation label), each of its training seeds a
    thin line."""
    require_columns(losses, ["method", "step", "loss"], "training_losses.csv")
    parts = losses["method"].map(split_label)
    frame = losses.assign(group=parts.str[0], seed=parts.str[1].fillna(0).astype(int))
    groups = method_order(frame["group"])
    columns = min(3, len(groups))
    rows = -(-len(groups) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 2.6 * rows + 0.4), sharey=True, squeeze=False)
    for ax, group in zip(axes.flat, groups):
        part = frame[frame["group"] == group]
        for _, curve in part.groupby("seed"):
            ax.plot(curve["step"], curve["loss"], linewidth=0.8, alpha=0.7)
        seeds = part["seed"].nunique()
        ax.set(title=f"{group} ({seeds} seed{'' if seeds == 1 else 's'})", xlabel="step")
    for ax in axes.flat[len(groups):]:
        ax.set_visible(False)
    for row in axes:
        row[0].set_ylabel("training loss")
    fig.suptitle("Training loss per step, one line per training seed")
    fig.tight_layout()
    return fig


def accuracy_by_form(by_form: pd.DataFrame) -> plt.Figure:
    """accuracy_by_form.csv: each method's accuracy (mean over its seeds) on the inverse problems (the unknown is a
    start, a change, a part, a referent, a group count or a rate) beside the forward ones, per dataset."""
    require_columns(by_form, ["dataset", "form", "method", "n", "accuracy"], "accuracy_by_form.csv")
    rows = by_form[by_form["form"].isin(("inverse", "forward")) & by_form["dataset"].map(is_headline).astype(bool)]
    if rows.empty:
        raise ValueError("accuracy_by_form.csv has no inverse or forward rows")
    datasets = dataset_order(rows["dataset"])
    methods = method_order(rows["method"])
    fig, axes = plt.subplots(1, len(datasets), figsize=(2.6 * len(datasets) + 2.2, 3.8), sharey=True, squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        part = rows[rows["dataset"] == dataset]
        sns.pointplot(data=part, x="form", y="accuracy", hue="method", order=["inverse", "forward"],
                      hue_order=methods, dodge=0.4, errorbar=None, ax=ax, legend=ax is axes[0][-1])
        n = part.groupby("form")["n"].max()
        ax.set(title=f"{dataset}\n(" + ", ".join(f"{f} {int(n[f])}" for f in ("inverse", "forward") if f in n)
               + " problems)", xlabel="", ylabel="accuracy")
        _percent_axis(ax, _fitted_top(part["accuracy"]))
    sns.move_legend(axes[0][-1], "upper left", bbox_to_anchor=(1, 1), fontsize="small", title="method")
    fig.suptitle("Accuracy by question form (inverse: the unknown is not the result)")
    fig.tight_layout()
    return fig


def acceptance(summary: dict) -> plt.Figure:
    """Rationales generated, verified and kept per thought type, from synthesis_summary.json."""
    types = (summary or {}).get("types")
    if not types:
        raise ValueError("synthesis_summary.json has no 'types' entries")
    stages = ["generated", "verified", "kept"]
    counts = []
    for thought, stats in types.items():
        missing = [s for s in stages if s not in stats]
        if missing:
            raise ValueError(f"synthesis_summary.json: types.{thought} lacks {missing}")
        counts += [{"thought": thought, "stage": s, "count": stats[s]} for s in stages]
    fig, ax = plt.subplots(figsize=(6, 3.8))
    sns.barplot(data=pd.DataFrame(counts), x="thought", y="count", hue="stage", hue_order=stages, errorbar=None, ax=ax)
    teacher = summary.get("teacher", "?")
    ax.set(xlabel="thought type", ylabel="rationales", title=f"Teacher rationales kept after verification ({teacher})")
    fig.tight_layout()
    return fig


# Self-reported published numbers (shared/docs/paper.md beside the repository, §5, §7), one row each with its setting
# and source. Other students, teachers and hardware: context, never comparable.
REFERENCES_FILE = files("eotd") / "published_references.csv"


def reference_table(acc: pd.DataFrame, run_info: dict) -> pd.DataFrame:
    """Our headline rows next to published reference numbers, each row saying its setting and source; reference rows
    carry comparable=False (different student, teacher and hardware), so the two never mix silently."""
    rows = headline(acc)
    params = run_params(run_info or {})
    name = (run_info or {}).get("params_name") or params.get("name") or "?"
    ours = rows.assign(origin="ours", setting=setting_line(params, {}),
                       source=f"results/{name}/accuracy.csv", comparable=True)
    refs = pd.read_csv(REFERENCES_FILE).assign(origin="published", comparable=False)
    columns = ["origin", "method", "strategy", "dataset", "n", "accuracy", "ci_low", "ci_high", "setting", "source",
               "comparable"]
    return pd.concat([ours, refs], ignore_index=True).reindex(columns=columns)
