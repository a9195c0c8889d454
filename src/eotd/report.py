"""The README results section, generated from results/<tier>/accuracy.csv (+ run.json, synthesis_summary.json).

Every number in the section comes from those files; `python -m eotd.report` rewrites the text between the
`<!-- results:start -->` and `<!-- results:end -->` markers of README.md and leaves everything else alone.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from eotd import records
from eotd.protocol import (ACCURACY_COLUMNS, BASELINE, METHODS, PAPER_BENCHMARKS, THOUGHTS, headline_strategies,
                           is_headline, method_order, pick_strategy, require_columns)

START, END = "<!-- results:start -->", "<!-- results:end -->"
TIMING_START, TIMING_END = "<!-- timings:start -->", "<!-- timings:end -->"


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


def tiers(results_root: Path) -> list[Path]:
    """results/<tier>/ folders holding an accuracy.csv: default first, then the others by name."""
    root = Path(results_root)
    found = [p.parent for p in root.glob("*/accuracy.csv")] if root.is_dir() else []
    return sorted(found, key=lambda p: (p.name != "default", p.name))


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
    """The params recorded in run.json, merged over all stages (later stages win), plus a stage's `device` if any."""
    merged: dict = {}
    for stage in (run_info.get("stages") or {}).values():
        merged.update(stage.get("params") or {})
        if stage.get("device"):
            merged["device"] = stage["device"]
    return merged


def setting_line(params: dict, summary: dict) -> str:
    """Student, teacher, training questions and hardware as recorded by the run; hardware defaults to CPU (the
    embedded tiers' target) when no stage recorded a device."""
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
    device = params.get("device") or "CPU"
    return f"student {params.get('student') or 'not recorded'}; teacher {teacher}; {train}; {device}"


def tier_markdown(tier_dir: Path) -> str:
    """One tier: its setting line, the headline table (dataset rows x method columns) and the notes."""
    tier_dir = Path(tier_dir)
    acc = pd.read_csv(tier_dir / "accuracy.csv")
    require_columns(acc, ACCURACY_COLUMNS, str(tier_dir / "accuracy.csv"))
    params = run_params(read_json(tier_dir / "run.json"))
    summary = read_json(tier_dir / "synthesis_summary.json")
    chosen = headline_strategies(acc)
    domains = read_json(tier_dir / "run.json").get("stages", {}).get("04_evaluation", {}).get("domains")
    table = headline_pivot(acc, domains=domains)
    fixed = ["domain", "n"] if domains else ["n"]
    methods = [c for c in table.columns if c not in fixed]
    seeds = _seed_counts(tier_dir)
    header = ["dataset", *fixed] + [column.replace("(", "(`").replace(")", "`)")
                                    + (f" ×{seeds[column.split(' (')[0]]}" if seeds.get(column.split(" (")[0], 1) > 1
                                       else "") for column in methods]
    lines = [f"### `{tier_dir.name}`", "", f"Setting: {setting_line(params, summary)}.", "",
             "| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] * (1 + len(fixed)) + ["---:"] * len(methods)) + "|"]
    for dataset, row in table.iterrows():
        lines.append("| " + " | ".join([f"`{dataset}`", *row]) + " |")
    overlap = acc[~acc["dataset"].map(is_headline)]
    notes = ["", "- Cells: accuracy % [95 % interval] from `accuracy.csv`; n = questions per dataset "
             "(several values when methods differ)."]
    if any(k > 1 for k in seeds.values()):
        notes.append("- `×k`: the method was trained with k seeds (data order); its cell is the exact mean over seeds "
                     "and its interval counts seeds and problems as sampled (one run: Wilson over problems). "
                     "`accuracy_by_seed.csv` has each seed; `method_comparisons.csv` each difference between methods "
                     "with its interval and verdict.")
    if domains:
        notes.append("- in-domain: the set's own training fold (or training split) is in the training data; "
                     "out-of-domain: it is not.")
    if BASELINE in chosen:
        notes.append(f"- `{BASELINE}` is shown at its best single strategy on these test sets (`{chosen[BASELINE]}`), "
                     "which favours the baseline.")
    if len(overlap):
        sizes = ", ".join(f"`{d}` (n={int(g['n'].max())})" for d, g in overlap.groupby("dataset", sort=True))
        notes.append(f"- Excluded from the table: decontamination-removed items, reported separately in "
                     f"`accuracy.csv`: {sizes}.")
    else:
        notes.append("- `_overlap` rows (decontamination-removed items) are excluded from the table; "
                     "this tier has none.")
    return "\n".join(lines + notes) + "\n"


def _seed_counts(tier_dir: Path) -> dict[str, int]:
    """method -> how many training seeds accuracy_by_seed.csv holds for it ({} when the file is absent)."""
    path = Path(tier_dir) / "accuracy_by_seed.csv"
    if not path.exists():
        return {}
    return pd.read_csv(path).groupby("method")["seed"].nunique().to_dict()


def results_markdown(results_dir: Path) -> str:
    """The results section for one tier folder (holding accuracy.csv) or for every tier under a results root."""
    results_dir = Path(results_dir)
    found = [results_dir] if (results_dir / "accuracy.csv").exists() else tiers(results_dir)
    head = ("Generated by `python -m eotd.report` from `results/<tier>/accuracy.csv`, `run.json` and "
            "`synthesis_summary.json`; do not edit by hand. Not comparable with the paper's setting "
            "(different student, teacher and hardware).\n")
    if not found:
        return head + "\nNo results yet: run `make study` to write `results/default/accuracy.csv`.\n"
    return head + "".join("\n" + tier_markdown(t) for t in found)


def _minutes(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds / 60:.1f}"


def machine_label(machine: dict) -> str:
    """"Intel(R) Xeon(R) Processor, 2 cores, bf16" from a run.json `machine` entry."""
    parts = [machine.get("cpu") or "?", f"{machine.get('cores', '?')} cores", "bf16" if machine.get("bf16") else "fp32"]
    return ", ".join(parts + ([f"GPU {machine['gpu']}"] if machine.get("gpu") else []))


def _peak_mb(stages: dict) -> str:
    """The highest `peak_rss_mb` the stages recorded ("—" when none did)."""
    peaks = [s["peak_rss_mb"] for s in stages.values() if s.get("peak_rss_mb") is not None]
    return str(max(peaks)) if peaks else "—"


def timing_markdown(results_root: Path) -> str:
    """Minutes per stage of every committed run (run.json's `seconds`), its machine and commit, how many of its
    students it trained itself (the rest came from the cache, so its 03 and 04 took less than a cold run's) and the
    peak resident memory of its most demanding stage."""
    runs = {t.name: read_json(t / "run.json").get("stages") or {} for t in tiers(results_root)}
    runs = {name: stages for name, stages in runs.items()
            if any(s.get("seconds") is not None for s in stages.values())}
    if not runs:
        return "No timed run yet: `make study` records each stage's seconds in `results/<tier>/run.json`.\n"
    names = sorted({stage for stages in runs.values() for stage in stages})
    lines = ["Minutes per stage, read from `results/<tier>/run.json` by `python -m eotd.report` (the stages' own "
             "time: install and the report come on top; a run that found its students in the cache, fewer than all "
             "trained, also reused their generations; peak MB: the largest resident memory of a stage's process):",
             "", "| tier | machine | commit | students trained | " + " | ".join(n.split("_")[0] for n in names)
             + " | total | peak MB |", "|" + "---|" * 4 + "---:|" * (len(names) + 2)]
    for tier, stages in runs.items():
        timed = [s for s in stages.values() if s.get("seconds") is not None]
        commits = ", ".join(sorted({str(s.get("git_commit") or "?")[:7] for s in stages.values()}))
        cells = [_minutes(stages.get(name, {}).get("seconds")) for name in names]
        trained = next((s for s in stages.values() if "students_reused" in s), None)
        fresh = (f"{len(trained['students']) - len(trained['students_reused'])} of {len(trained['students'])}"
                 if trained else "—")
        lines.append(f"| `{tier}` | {machine_label(timed[0].get('machine') or {})} | {commits} | {fresh} | "
                     + " | ".join(cells)
                     + f" | **{_minutes(sum(s['seconds'] for s in timed))}** | {_peak_mb(stages)} |")
    return "\n".join(lines) + "\n"


def update_readme(readme: Path, results_root: Path) -> bool:
    """Replace the text between the results markers with the generated section, and the text between the timing
    markers (where the README has them) with the timing table; True when the file changed.

    A README without the results markers gets them appended at its end (with the section between them)."""
    changed = records.replace_marked_block(readme, START, END, f"{START}\n{results_markdown(results_root)}{END}")
    text = Path(readme).read_text()
    if TIMING_START in text and TIMING_END in text:
        changed |= records.replace_marked_block(readme, TIMING_START, TIMING_END,
                                                f"{TIMING_START}\n{timing_markdown(results_root)}{TIMING_END}")
    return changed


def main() -> None:
    from eotd import paths

    readme, root = paths.ROOT / "README.md", paths.results_dir()
    found = [t.name for t in tiers(root)]
    changed = update_readme(readme, root)
    print(f"{readme}: results section {'updated' if changed else 'unchanged'} from tiers {found or 'none'} in {root}")


if __name__ == "__main__":
    main()
