"""The README results section, generated from results/<tier>/accuracy.csv (+ run.json, synthesis_summary.json).

Every number in the section comes from those files; `python -m eotd.report` rewrites the text between the
`<!-- results:start -->` and `<!-- results:end -->` markers of README.md and leaves everything else alone.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

START, END = "<!-- results:start -->", "<!-- results:end -->"
ACC_COLUMNS = ["dataset", "method", "strategy", "n", "correct", "accuracy", "ci_low", "ci_high"]
METHOD_ORDER = ["base", "CoTD", "PoTD", "EoTD", "ETD"]
SINGLE = ["cot", "pot", "eot"]
# Each distilled model is scored with the trigger it was trained on; ETD with the fallback chain of paper §4's
# candidate (b). The paper's own ETD rule is unknown, so this is our choice, and callers can override it.
DEFAULT_STRATEGY = {"CoTD": "cot", "PoTD": "pot", "EoTD": "eot", "ETD": "fallback:pot>eot>cot"}


def require_columns(frame: pd.DataFrame, columns: list[str], source: str) -> None:
    """A clear error naming the file and the missing columns, instead of a KeyError deep inside pandas/seaborn."""
    if frame is None or len(frame) == 0:
        raise ValueError(f"{source} is empty")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{source} lacks column(s) {missing}; it has {list(frame.columns)}")


def is_headline(dataset: str) -> bool:
    """`*_overlap` rows are the items removed by decontamination: reported apart, never in the headline."""
    return not str(dataset).endswith("_overlap")


def method_order(methods) -> list[str]:
    present = list(dict.fromkeys(methods))
    return [m for m in METHOD_ORDER if m in present] + sorted(m for m in present if m not in METHOD_ORDER)


def _fallback_choice(strategies: list[str]) -> str | None:
    fallbacks = sorted(s for s in strategies if s.startswith("fallback:"))
    if DEFAULT_STRATEGY["ETD"] in fallbacks:
        return DEFAULT_STRATEGY["ETD"]
    return fallbacks[0] if fallbacks else ("vote" if "vote" in strategies else None)


def headline_strategies(acc: pd.DataFrame, strategy_for: dict[str, str] | None = None) -> dict[str, str]:
    """One strategy per method: `strategy_for` first, then the trained trigger (CoTD/PoTD/EoTD), ETD's fallback chain
    (else another fallback, else vote), and for base (or an unknown method) its best single strategy by pooled accuracy
    over the headline datasets all candidates share, which favours the baseline (chosen on the test sets)."""
    require_columns(acc, ACC_COLUMNS, "accuracy.csv")
    strategy_for = strategy_for or {}
    chosen = {}
    headline = acc[acc["dataset"].map(is_headline)]
    for method in method_order(acc["method"]):
        rows = headline[headline["method"] == method]
        present = sorted(rows["strategy"].unique())
        pick = strategy_for.get(method) or DEFAULT_STRATEGY.get(method)
        if method == "ETD" and pick not in present and method not in strategy_for:
            pick = _fallback_choice(present)
        if pick not in present:
            if method in strategy_for:
                raise ValueError(f"accuracy.csv has no strategy {pick!r} for method {method!r}; it has {present}")
            singles = rows[rows["strategy"].isin(SINGLE)] if rows["strategy"].isin(SINGLE).any() else rows
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


def headline(acc: pd.DataFrame, strategy_for: dict[str, str] | None = None) -> pd.DataFrame:
    """The headline rows: no `_overlap` datasets, each method at its one strategy (see headline_strategies)."""
    chosen = headline_strategies(acc, strategy_for)
    keep = acc["dataset"].map(is_headline) & (acc["strategy"] == acc["method"].map(chosen))
    return acc[keep].reset_index(drop=True)


def tiers(results_root: Path) -> list[Path]:
    """results/<tier>/ folders holding an accuracy.csv: default first, then the others by name."""
    root = Path(results_root)
    found = [p.parent for p in root.glob("*/accuracy.csv")] if root.is_dir() else []
    return sorted(found, key=lambda p: (p.name != "default", p.name))


def _pct(x: float) -> str:
    return "–" if pd.isna(x) else f"{100 * x:.1f}"


def _cell(row: pd.Series) -> str:
    return f"{_pct(row['accuracy'])}% [{_pct(row['ci_low'])}–{_pct(row['ci_high'])}]"


def _read_json(path: Path) -> dict:
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
    device = params.get("device") or "CPU"
    return f"student {params.get('student') or 'not recorded'}; teacher {teacher}; {train}; {device}"


def tier_markdown(tier_dir: Path) -> str:
    """One tier: its setting line, the headline table (dataset rows x method columns) and the notes."""
    tier_dir = Path(tier_dir)
    acc = pd.read_csv(tier_dir / "accuracy.csv")
    require_columns(acc, ACC_COLUMNS, str(tier_dir / "accuracy.csv"))
    params = run_params(_read_json(tier_dir / "run.json"))
    summary = _read_json(tier_dir / "synthesis_summary.json")
    chosen = headline_strategies(acc)
    rows = headline(acc)
    methods = method_order(rows["method"])
    datasets = list(dict.fromkeys(rows["dataset"]))
    header = ["dataset", "n"] + [f"{m} (`{chosen[m]}`)" for m in methods]
    lines = [f"### `{tier_dir.name}`", "", f"Setting: {setting_line(params, summary)}.", "",
             "| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * len(methods)) + "|"]
    for dataset in datasets:
        part = rows[rows["dataset"] == dataset]
        ns = sorted(set(int(n) for n in part["n"]))
        cells = [f"`{dataset}`", "/".join(str(n) for n in ns)]
        for method in methods:
            hit = part[part["method"] == method]
            cells.append(_cell(hit.iloc[0]) if len(hit) else "—")
        lines.append("| " + " | ".join(cells) + " |")
    overlap = acc[~acc["dataset"].map(is_headline)]
    notes = ["", "- Cells: accuracy % [95 % Wilson interval] from `accuracy.csv`; n = questions per dataset "
             "(several values when methods differ)."]
    if "base" in chosen:
        notes.append(f"- `base` is shown at its best single strategy on these test sets (`{chosen['base']}`), "
                     "which favours the baseline.")
    if len(overlap):
        sizes = ", ".join(f"`{d}` (n={int(g['n'].max())})" for d, g in overlap.groupby("dataset", sort=True))
        notes.append(f"- Excluded from the table: decontamination-removed items, reported separately in "
                     f"`accuracy.csv`: {sizes}.")
    else:
        notes.append("- `_overlap` rows (decontamination-removed items) are excluded from the table; "
                     "this tier has none.")
    return "\n".join(lines + notes) + "\n"


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


def update_readme(readme: Path, results_root: Path) -> bool:
    """Replace the text between the results markers with the generated section; True when the file changed.

    A README without the markers gets them appended at its end (with the section between them)."""
    readme = Path(readme)
    text = readme.read_text() if readme.exists() else ""
    body = f"{START}\n{results_markdown(results_root)}{END}"
    start, end = text.find(START), text.find(END)
    if start == -1 and end == -1:
        new = text + ("\n" if text and not text.endswith("\n") else "") + ("\n" if text else "") + body + "\n"
    elif start == -1 or end == -1 or end < start:
        raise ValueError(f"{readme}: needs both {START} and {END}, in that order")
    else:
        new = text[:start] + body + text[end + len(END):]
    if new == text:
        return False
    readme.write_text(new)
    return True


def main() -> None:
    from eotd import paths

    readme, root = paths.ROOT / "README.md", paths.results_dir()
    found = [t.name for t in tiers(root)]
    changed = update_readme(readme, root)
    print(f"{readme}: results section {'updated' if changed else 'unchanged'} from tiers {found or 'none'} in {root}")


if __name__ == "__main__":
    main()
