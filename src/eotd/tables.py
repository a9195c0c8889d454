"""The table library of results/<tier>/ files: the headline, seed, strategy and ablation pivots, the order datasets
and strategies are listed in, and a run's setting line; used by the notebooks, the summaries, the figures, the HTML
report and the README."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from eotd.protocol import (METHODS, PAPER_BENCHMARKS, THOUGHTS, headline_strategies, is_headline,
                           method_order, pick_strategy, require_columns)


def dataset_order(datasets) -> list[str]:
    """Datasets as tables list them: the paper's four benchmarks first (in its order), then the others by name."""
    present = list(dict.fromkeys(datasets))
    return [d for d in PAPER_BENCHMARKS if d in present] + sorted(d for d in present if d not in PAPER_BENCHMARKS)


def strategy_order(strategies) -> list[str]:
    """Strategies as tables and figures list them: the single thoughts in protocol order, then the rest by name."""
    present = set(strategies)
    return [s for s in THOUGHTS if s in present] + sorted(present - set(THOUGHTS))


def headline(acc: pd.DataFrame, strategy_for: dict[str, str] | None = None) -> pd.DataFrame:
    """The headline rows: no `_overlap` datasets, each method at its one strategy (see headline_strategies)."""
    chosen = headline_strategies(acc, strategy_for)
    keep = acc["dataset"].map(is_headline) & (acc["strategy"] == acc["method"].map(chosen))
    return acc[keep].reset_index(drop=True)


def strategy_pivot(acc: pd.DataFrame, method: str) -> pd.DataFrame:
    """One method under every strategy it was scored with: headline datasets x strategies (single thoughts first),
    cells `accuracy% [95 % CI]`."""
    rows = acc[(acc["method"] == method) & acc["dataset"].map(is_headline)]
    table = rows.assign(cell=rows.apply(interval, axis=1)).pivot(index="dataset", columns="strategy", values="cell")
    return table.reindex(columns=strategy_order(rows["strategy"]))


ABLATION_COLUMNS = ["ablation", "variant", "train_examples", "dataset", "strategy", "accuracy", "ci_low", "ci_high"]


def canonical_mix(variant: str) -> str:
    """A thought-mix variant in the protocol's order, whatever order the file wrote: "eot+cot" -> "cot+eot"."""
    parts = [p.strip().lower() for p in str(variant).replace(",", "+").split("+") if p.strip()]
    return "+".join(sorted(parts, key=lambda p: THOUGHTS.index(p) if p in THOUGHTS else len(THOUGHTS)))


def _variant_thoughts(ablation: str, variant: str) -> list[str]:
    """The thought types a variant's student was trained on: a mix's own, else its method's ("ETD 25%" -> ETD)."""
    if ablation == "thought_mix":
        return variant.split("+")
    return list(METHODS.get(str(variant).split()[0], ()))


def ablation_headline(ablation: pd.DataFrame) -> pd.DataFrame:
    """One row of ablation_accuracy.csv per ablation, variant and headline dataset: the variant at its strategy
    (pick_strategy); thought-mix variants named canonically."""
    require_columns(ablation, ABLATION_COLUMNS, "ablation_accuracy.csv")
    rows = ablation[ablation["dataset"].map(is_headline)].copy()
    mixes = rows["ablation"] == "thought_mix"
    rows.loc[mixes, "variant"] = rows.loc[mixes, "variant"].map(canonical_mix)
    picked = []
    for (name, variant, dataset), group in rows.groupby(["ablation", "variant", "dataset"], sort=False):
        where = f"ablation_accuracy.csv: {name} {variant!r} on {dataset}"
        strategy = pick_strategy(set(group["strategy"]), _variant_thoughts(name, variant))
        if strategy is None:
            raise ValueError(f"{where}: no usable strategy among {sorted(set(group['strategy']))}")
        hit = group[group["strategy"] == strategy]
        if len(hit) > 1:
            raise ValueError(f"{where}: {len(hit)} rows at {strategy!r}")
        picked.append(hit)
    return pd.concat(picked, ignore_index=True) if picked else rows


def ablation_pivot(ablation: pd.DataFrame) -> pd.DataFrame:
    """The ablation table compactly: one row per ablation and variant (with its training examples), one column per
    headline dataset, cells `accuracy% [95 % CI]` at the variant's strategy."""
    rows = ablation_headline(ablation)
    rows = rows.assign(cell=rows.apply(interval, axis=1))
    return rows.pivot_table(index=["ablation", "variant", "train_examples"], columns="dataset", values="cell",
                            aggfunc="first", sort=False)


def _pct(x: float) -> str:
    return "–" if pd.isna(x) else f"{100 * x:.1f}"


def interval(row) -> str:
    """An accuracy row as `52.0% [45.1–58.8]` (accuracy and its 95 % interval, in percent)."""
    return f"{_pct(row['accuracy'])}% [{_pct(row['ci_low'])}–{_pct(row['ci_high'])}]"


def headline_pivot(acc: pd.DataFrame, strategy_for: dict[str, str] | None = None,
                   domains: dict[str, str] | None = None) -> pd.DataFrame:
    """The headline table: one row per dataset (no `_overlap`; the paper's four benchmarks first; with `domains`, a
    domain column), its n, and one column per method at its headline strategy (columns named `method (strategy)`),
    each cell `accuracy% [95 % CI]`."""
    chosen = headline_strategies(acc, strategy_for)
    rows = headline(acc, strategy_for)
    datasets = dataset_order(rows["dataset"])
    table = pd.DataFrame(index=pd.Index(datasets, name="dataset"))
    if domains:
        table["domain"] = [domains.get(d, "—") for d in datasets]
    table["n"] = [("/".join(str(n) for n in sorted(set(rows.loc[rows["dataset"] == d, "n"].astype(int)))))
                  for d in datasets]
    for method in method_order(rows["method"]):
        part = rows[rows["method"] == method].set_index("dataset")
        table[f"{method} ({chosen[method]})"] = [interval(part.loc[d]) if d in part.index else "—" for d in datasets]
    return table


def seed_pivot(by_seed: pd.DataFrame, strategy_for: dict[str, str]) -> pd.DataFrame:
    """Training noise at a glance: datasets x methods (each at its strategy), cells `mean% (min–max over k seeds)`
    from accuracy_by_seed.csv (a range of seeds, not a confidence interval)."""
    if by_seed.empty:
        return pd.DataFrame()
    rows = by_seed[(by_seed["strategy"] == by_seed["method"].map(strategy_for)) & by_seed["dataset"].map(is_headline)]
    stats = rows.groupby(["dataset", "method"])["accuracy"].agg(["mean", "min", "max", "size"])
    cells = stats.apply(lambda r: f"{_pct(r['mean'])}% ({_pct(r['min'])}–{_pct(r['max'])} over {int(r['size'])} seeds)"
                        if r["size"] > 1 else f"{_pct(r['mean'])}% (1 seed)", axis=1)
    table = cells.unstack("method")
    return table.reindex(index=dataset_order(table.index), columns=method_order(table.columns))


def read_json(path: Path) -> dict:
    """A result file's JSON, or {} when the stage that writes it has not run."""
    return json.loads(path.read_text()) if path.exists() else {}


def run_params(run_info: dict) -> dict:
    """The params recorded in run.json, merged over all stages (later stages win), plus `machine`: the last stage's
    machine that has a GPU, else the last stage's machine (absent when no stage recorded one)."""
    merged: dict = {}
    machines = []
    for stage in (run_info.get("stages") or {}).values():
        merged.update(stage.get("params") or {})
        if stage.get("machine"):
            machines.append(stage["machine"])
    if machines:
        merged["machine"] = next((m for m in reversed(machines) if m.get("gpu")), machines[-1])
    return merged


def hardware(machine: dict | None) -> str:
    """A run's hardware in a few words: "GPU NVIDIA H100 80GB HBM3", "CPU Intel(R) Xeon(R) Processor (2 cores, bf16)"
    or, when no stage recorded its machine, "CPU (machine not recorded)"."""
    if not machine:
        return "CPU (machine not recorded)"
    if machine.get("gpu"):
        return f"GPU {machine['gpu']}"
    return (f"CPU {machine.get('cpu') or '?'} ({machine.get('cores', '?')} cores, "
            f"{'bf16' if machine.get('bf16') else 'fp32'})")


def setting_line(params: dict, summary: dict) -> str:
    """Student, teacher, training questions and hardware (see hardware) as recorded by the run (`params` from
    run_params)."""
    teacher = summary.get("teacher") or params.get("teacher_model") or params.get("teacher") or "not recorded"
    if "teacher_is_llm" in summary:
        teacher += " (LLM)" if summary["teacher_is_llm"] else " (not an LLM)"
    questions = params.get("train_questions")
    train = f"{questions if questions is not None else 'all'} {params.get('train_dataset', '?')} training questions"
    extra = params.get("train_extra") or {}
    if extra:
        train += " + training folds of " + ", ".join(f"{name} ({'all' if n is None else n})" for name, n in extra.items())
        if summary.get("questions"):
            train += f" ({summary['questions']} questions in all)"
    student = params.get("student") or "not recorded"
    return f"student {student}; teacher {teacher}; {train}; {hardware(params.get('machine'))}"


def machine_label(machine: dict) -> str:
    """"Intel(R) Xeon(R) Processor, 2 cores, bf16" from a run.json `machine` entry."""
    parts = [machine.get("cpu") or "?", f"{machine.get('cores', '?')} cores", "bf16" if machine.get("bf16") else "fp32"]
    return ", ".join(parts + ([f"GPU {machine['gpu']}"] if machine.get("gpu") else []))
