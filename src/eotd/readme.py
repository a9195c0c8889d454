"""README.md's generated blocks, each between its markers: the default's memory and time requirement, the params
tiers (eotd.tiers), the minutes per stage, the findings of the default run and the results tables.
`python -m eotd.readme` rewrites them from params/*.yaml and results/*/ and leaves everything else alone (`--check`:
only say whether they are current)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from eotd import records
from eotd import tiers
from eotd.evaluate import NO_CLEAR_DIFFERENCE
from eotd.protocol import (ACCURACY_COLUMNS, BASELINE, HEADLINE_STRATEGY, headline_strategies, is_headline,
                           method_order, require_columns)
from eotd.tables import dataset_order, headline_pivot, machine_label, read_json, run_params, setting_line

START, END = "<!-- results:start -->", "<!-- results:end -->"
TIMING_START, TIMING_END = "<!-- timings:start -->", "<!-- timings:end -->"
FINDINGS_START, FINDINGS_END = "<!-- findings:start -->", "<!-- findings:end -->"
NEEDS_START, NEEDS_END = "<!-- requirements:start -->", "<!-- requirements:end -->"
MEMORY_SIZES_GB = (4, 8, 16, 24, 32, 48, 64, 128)  # the memory a machine comes with
HEADROOM_MB = 1024  # beside the study's own peak: the OS, the notebook server, papermill
FINDINGS_TIER = "default"  # the run whose findings README states


def tier_dirs(results_root: Path) -> list[Path]:
    """results/<tier>/ folders holding an accuracy.csv: default first, then the others by name."""
    root = Path(results_root)
    found = [p.parent for p in root.glob("*/accuracy.csv")] if root.is_dir() else []
    return sorted(found, key=lambda p: (p.name != "default", p.name))


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
                     "derived from gsm8k_test: written from GSM8K test questions (GSM-Symbolic, GSM-Hard), "
                     "decontaminated against the training questions; out-of-domain: neither.")
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
    found = [results_dir] if (results_dir / "accuracy.csv").exists() else tier_dirs(results_dir)
    head = ("Generated by `python -m eotd.readme` from `results/<tier>/accuracy.csv`, `run.json` and "
            "`synthesis_summary.json`; do not edit by hand. Not comparable with the paper's setting "
            "(different student, teacher and hardware).\n")
    if not found:
        return head + "\nNo results yet: run `make study` to write `results/default/accuracy.csv`.\n"
    return head + "".join("\n" + tier_markdown(t) for t in found)


def _minutes(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds / 60:.1f}"


def _peak(stages: dict) -> int | None:
    """The highest `peak_rss_mb` the stages recorded (None when none did)."""
    return max((s["peak_rss_mb"] for s in stages.values() if s.get("peak_rss_mb") is not None), default=None)


def _timed(stages: dict) -> list[dict]:
    """The stages that recorded their seconds."""
    return [s for s in stages.values() if s.get("seconds") is not None]


def _training(stages: dict) -> dict | None:
    """The stage that trained the students (it lists them and those reused from the cache), or None."""
    return next((s for s in stages.values() if "students_reused" in s), None)


def timing_markdown(results_root: Path) -> str:
    """Minutes per stage of every committed run (run.json's `seconds`), its machine and commit, how many of its
    students it trained itself (the rest came from the cache, so its 03 and 04 took less than a cold run's) and the
    peak resident memory of its most demanding stage."""
    runs = {t.name: read_json(t / "run.json").get("stages") or {} for t in tier_dirs(results_root)}
    runs = {name: stages for name, stages in runs.items() if _timed(stages)}
    if not runs:
        return "No timed run yet: `make study` records each stage's seconds in `results/<tier>/run.json`.\n"
    names = sorted({stage for stages in runs.values() for stage in stages})
    lines = ["Minutes per stage, read from `results/<tier>/run.json` by `python -m eotd.readme` (the stages' own "
             "time: install and the report come on top; students trained: how many of its students the run trained, the "
             "rest came from the cache; peak MB: the largest resident memory of a stage's process):",
             "", "| tier | machine | commit | students trained | " + " | ".join(n.split("_")[0] for n in names)
             + " | total | peak MB |", "|" + "---|" * 4 + "---:|" * (len(names) + 2)]
    for tier, stages in runs.items():
        timed = _timed(stages)
        commits = ", ".join(sorted({str(s.get("git_commit") or "?")[:7] for s in stages.values()}))
        cells = [_minutes(stages.get(name, {}).get("seconds")) for name in names]
        trained = _training(stages)
        fresh = (f"{len(trained['students']) - len(trained['students_reused'])} of {len(trained['students'])}"
                 if trained else "—")
        lines.append(f"| `{tier}` | {machine_label(timed[0].get('machine') or {})} | {commits} | {fresh} | "
                     + " | ".join(cells)
                     + f" | **{_minutes(sum(s['seconds'] for s in timed))}** | {_peak(stages) or '—'} |")
    return "\n".join(lines) + "\n"


def memory_gb(peak_mb: int) -> int:
    """The smallest usual memory size holding a run whose largest process peaked at `peak_mb`, with headroom."""
    need = (peak_mb + HEADROOM_MB) / 1024
    return next((gb for gb in MEMORY_SIZES_GB if gb >= need), MEMORY_SIZES_GB[-1])


def requirements_markdown(tier_dir: Path) -> str:
    """The memory and the time the committed default needs, from its run.json: the largest stage peak, rounded up to
    a usual memory size, and its stages' minutes with the machine, said to be cold only when it trained every
    student itself."""
    stages = read_json(Path(tier_dir) / "run.json").get("stages") or {}
    peak, timed = _peak(stages), _timed(stages)
    if peak is None or not timed:
        return (f"The `{Path(tier_dir).name}` run has no recorded memory and time yet: `make study` records them in "
                f"`results/{Path(tier_dir).name}/run.json`.\n")
    trained = _training(stages)
    cold = trained is not None and not trained["students_reused"]
    how = (f"cold (all {len(trained['students'])} students trained in the run)" if cold else
           "with students from the cache (a cold run takes longer)")
    return (f"Memory: **{memory_gb(peak)} GB** (the committed `{Path(tier_dir).name}` run's largest stage "
            f"peaked at {peak} MB resident). Time: its stages took **{_minutes(sum(s['seconds'] for s in timed))}"
            f" min** {how} on {machine_label(timed[0].get('machine') or {})}, plus about 3 minutes of install; "
            "a CPU without bf16 trains and generates in fp32, about twice as slowly (docs/performance.md).\n")


def _points(x: float) -> str:
    return f"{round(100 * x, 1) + 0.0:+.1f}"  # + 0.0: no "-0.0"


def _oriented(row: dict, first: str | None = None) -> tuple[str, str, str]:
    """A comparison row as (A, B, `+2.7 [-3.9, +9.3]`: A − B in points with its 95 % interval); A is `first` when
    given, else the side ahead."""
    a, b, diff, low, high = row["a"], row["b"], row["diff"], row["diff_low"], row["diff_high"]
    if (b == first) if first else diff < 0:
        a, b, diff, low, high = b, a, -diff, -high, -low
    return a, b, f"{_points(diff)} [{_points(low)}, {_points(high)}]"


def _difference(row: dict) -> str:
    """`A − B +2.7 [-3.9, +9.3]`, A the side ahead."""
    a, b, span = _oriented(row)
    return f"{a} − {b} {span}"


def _and(names: list[str]) -> str:
    return " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


def _per_set(rows: pd.DataFrame, cell) -> str:
    """`svamp`: cell, cell; `asdiv` (inverse problems): cell: each set's (and form's) rows, in their order."""
    return "; ".join(f"`{dataset}`{'' if form == 'all' else f' ({form} problems)'}: "
                     + ", ".join(cell(r) for r in part.to_dict("records"))
                     for (dataset, form), part in rows.groupby(["dataset", "form"], sort=False))


def _run_line(run_info: dict) -> str:
    stages = [s for s in (run_info.get("stages") or {}).values() if s.get("git_commit")]
    if not stages:
        return "- **Run.** `run.json` records no stage."
    commits = ", ".join(dict.fromkeys(s["git_commit"][:7] for s in stages))
    days = sorted({str(s[k])[:10] for s in stages for k in ("started", "finished") if s.get(k)})
    machines = "; ".join(dict.fromkeys(machine_label(s["machine"]) for s in stages if s.get("machine")))
    when = "undated" if not days else days[0] if days[0] == days[-1] else f"{days[0]} to {days[-1]}"
    line = f"- **Run.** Commit {commits}, {when}, on {machines or 'an unrecorded machine'}"
    if mark := run_info.get("incomplete"):
        line = (f"- **Incomplete run.** A study at {str(mark.get('git_commit', ''))[:7]} stopped before "
                f"{', '.join(mark.get('pending', []))}: those stages' files may be from another run.\n" + line)
    trained = next((s for s in stages if "students_reused" in s), None)
    if trained:
        total, reused = len(trained["students"]), len(trained["students_reused"])
        line += (f"; it trained {total - reused} of its {total} students"
                 + (" and found the others in the cache, trained by an earlier run" if reused else ""))
    return line + "."


def _design_line(comparisons: pd.DataFrame, by_seed: pd.DataFrame) -> str:
    sides = [comparisons[[side, f"{side}_seeds"]].set_axis(["method", "seeds"], axis=1) for side in ("a", "b")]
    seeds = pd.concat(sides).groupby("method")["seeds"].max()
    groups: dict[int, list[str]] = {}
    for method in method_order(seeds.index):
        if method != BASELINE:
            groups.setdefault(int(seeds[method]), []).append(method)
    methods = "; ".join(f"{_and(ms)} trained with {k} seed{'s' if k > 1 else ''}{' each' if len(ms) > 1 else ''}"
                        for k, ms in groups.items()) + (", and the untrained base" if BASELINE in seeds.index else "")
    sizes = by_seed[by_seed["dataset"].map(is_headline)].groupby("dataset")["n"].unique()
    problems = ", ".join(f"`{d}` {'/'.join(str(n) for n in sorted(sizes[d]))}" for d in dataset_order(sizes.index))
    families = comparisons[comparisons["form"] == "all"].groupby("dataset").size()
    return (f"- **Design.** {methods}; problems per set: {problems}. Differences in points with 95 % "
            f"intervals (not adjusted); verdicts Holm-adjusted over the {'/'.join(map(str, sorted(set(families))))} "
            "pairs of a set, a difference decided when its adjusted p < 0.05.")


def _decided_line(comparisons: pd.DataFrame) -> str:
    decided = comparisons[comparisons["verdict"] != NO_CLEAR_DIFFERENCE]
    if decided.empty:
        return "- **Decided.** No pair of methods on any set."
    return (f"- **Decided** ({len(decided)} of {len(comparisons)} pairs): "
            + _per_set(decided, lambda r: f"{r['verdict']} ({_oriented(r)[2]})") + ".")


def _undecided_line(comparisons: pd.DataFrame) -> str:
    """Per set, the largest undecided differences between two trained methods (all those tied at 0.1 points; none
    where every difference is 0)."""
    rows = comparisons[(comparisons["form"] == "all") & (comparisons["verdict"] == NO_CLEAR_DIFFERENCE)
                       & (comparisons["a"] != BASELINE) & (comparisons["b"] != BASELINE)]
    size = (100 * rows["diff"].abs()).round(1)
    largest = rows[(size > 0) & (size == size.groupby(rows["dataset"]).transform("max"))]
    return ("- **Largest undecided differences** between trained methods: " + _per_set(largest, _difference) + "."
            if len(largest) else "")


def _spread_line(by_seed: pd.DataFrame, strategies: dict[str, str]) -> str:
    """Per set, the range of the seed SDs of the methods trained with several seeds, naming the largest when alone."""
    rows = by_seed[(by_seed["strategy"] == by_seed["method"].map(strategies)) & by_seed["dataset"].map(is_headline)]
    sd = (100 * rows.groupby(["dataset", "method"])["accuracy"].std()).round(1).dropna()
    if sd.empty:
        return ""
    cells = []
    for dataset in dataset_order(sd.index.get_level_values("dataset")):
        part = sd.loc[dataset]
        top = part[part == part.max()].index
        largest = f" ({top[0]} largest)" if len(top) == 1 else ""
        cells.append(f"`{dataset}` {part.min():.1f}–{part.max():.1f}{largest}")
    return ("- **Seed spread** (SD of a method's accuracy over its training seeds, in points; per set the smallest–"
            "largest of the methods'): " + "; ".join(cells) + ".")


def _inverting(forms: dict) -> str:
    return f"{forms['inverts']}/{forms['verified']} ({100 * forms['inverts'] / forms['verified']:.0f} %)"


def _eot_line(forms: dict) -> str:
    """How relational the verified EoT training data is (verification_summary.json's `eot_forms`)."""
    every = forms.get("all") or {}
    if not every.get("verified"):
        return ""
    sources = ", ".join(f"`{s}` {_inverting(f)}" for s, f in forms.items() if s != "all" and f.get("verified"))
    return (f"- **EoT training data.** {_inverting(every)} of the verified EoT rationales state a relation the "
            f"solver must invert ({sources}); the rest are forward, the result their unknown ({every['text_forward']} "
            f"state the text's relation, {every['forward_fallback']} the gold calculation).")


def _versus_line(comparisons: pd.DataFrame, other: str) -> str:
    """EoTD − `other` per set, over all problems and on inverse ones, with the verdicts."""
    pair = comparisons[comparisons[["a", "b"]].apply(set, axis=1) == {"EoTD", other}]
    parts = []
    for form, what in (("all", "all problems"), ("inverse", "inverse problems")):
        rows = pair[pair["form"] == form].to_dict("records")
        if not rows:
            continue
        decided = [f"{r['verdict']} on `{r['dataset']}`" for r in rows if r["verdict"] != NO_CLEAR_DIFFERENCE]
        parts.append(f"{what}: " + ", ".join(f"`{r['dataset']}` {_oriented(r, 'EoTD')[2]}" for r in rows)
                     + f" ({'; '.join(decided) if decided else 'no clear difference on any set'})")
    return f"- **EoTD vs {other}** (EoTD − {other}): " + "; ".join(parts) + "." if parts else ""


def findings_markdown(tier_dir: Path) -> str:
    """What a run found, in a few bullets: the run, the design, the decided pairs, the largest undecided differences
    between trained methods, the seed spread, how relational the EoT data is, and EoTD against EoTD-forward and PoTD.
    Read from the tier's run.json, method_comparisons.csv, accuracy_by_seed.csv and verification_summary.json."""
    tier_dir = Path(tier_dir)
    head = (f"Generated by `python -m eotd.readme` from `results/{tier_dir.name}/` (`run.json`, "
            "`method_comparisons.csv`, `accuracy_by_seed.csv`, `verification_summary.json`); do not edit by hand.\n\n")
    files = [tier_dir / "method_comparisons.csv", tier_dir / "accuracy_by_seed.csv"]
    if not all(f.exists() for f in files):
        return head + f"No findings yet: `make study` writes `results/{tier_dir.name}/method_comparisons.csv`.\n"
    comparisons, by_seed = (pd.read_csv(f) for f in files)
    if "form" not in comparisons:  # a file from before the form rows: every row is over all problems
        comparisons = comparisons.assign(form="all")
    comparisons = comparisons[comparisons["dataset"].map(is_headline)]
    order = {d: i for i, d in enumerate(dataset_order(comparisons["dataset"]))}
    comparisons = comparisons.sort_values("dataset", key=lambda d: d.map(order), kind="stable")
    strategies = {**HEADLINE_STRATEGY, **dict(zip(comparisons["a"], comparisons["a_strategy"])),
                  **dict(zip(comparisons["b"], comparisons["b_strategy"]))}
    forms = read_json(tier_dir / "verification_summary.json").get("eot_forms") or {}
    lines = [_run_line(read_json(tier_dir / "run.json")), _design_line(comparisons, by_seed),
             _decided_line(comparisons), _undecided_line(comparisons),
             _spread_line(by_seed, strategies), _eot_line(forms),
             *(_versus_line(comparisons, other) for other in ("EoTD-forward", "PoTD"))]
    return head + "\n".join(line for line in lines if line) + "\n"


def blocks(results_root: Path, params_dir: Path | None = None) -> dict[tuple[str, str], str]:
    """Each generated block (markers included) by its (start, end) markers, in README's order."""
    results_root = Path(results_root)
    bodies = {(NEEDS_START, NEEDS_END): requirements_markdown(results_root / FINDINGS_TIER),
              (tiers.START, tiers.END): tiers.markdown(params_dir),
              (TIMING_START, TIMING_END): timing_markdown(results_root),
              (FINDINGS_START, FINDINGS_END): findings_markdown(results_root / FINDINGS_TIER),
              (START, END): results_markdown(results_root)}
    return {(start, end): f"{start}\n{body}{end}" for (start, end), body in bodies.items()}


def current(readme: Path, start: str, end: str) -> str | None:
    """The block README.md holds now between `start` and `end` (markers included), or None without both in order."""
    text = Path(readme).read_text()
    i, j = text.find(start), text.find(end)
    return text[i:j + len(end)] if -1 < i < j else None


def update_readme(readme: Path, results_root: Path, params_dir: Path | None = None) -> bool:
    """Replace each generated block whose markers README.md has (a block without them is left out); True when the
    file changed."""
    changed = False
    for (start, end), block in blocks(results_root, params_dir).items():
        text = Path(readme).read_text()
        if start in text or end in text:
            changed |= records.replace_marked_block(readme, start, end, block)
    return changed


def main(argv: list[str] | None = None) -> None:
    from eotd import paths

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a generated block of README.md is stale")
    args = parser.parse_args(argv)
    readme, root = paths.ROOT / "README.md", paths.results_dir()
    if args.check:
        stale = [start for (start, end), block in blocks(root).items() if current(readme, start, end) != block]
        if stale:
            raise SystemExit(f"{readme}: {', '.join(stale)} out of date; run `python -m eotd.readme`")
        print(f"{readme}: generated blocks current")
        return
    changed = update_readme(readme, root)
    found = [t.name for t in tier_dirs(root)]
    print(f"{readme}: generated blocks {'updated' if changed else 'unchanged'} from tiers {found or 'none'} in {root}")


if __name__ == "__main__":
    main(sys.argv[1:])
