"""What each stage found, in a few sentences of markdown generated from the files it wrote in results/<name>/.

Each stage notebook ends with its summary and `report.html` opens with all of them, so every number a reader sees
there comes from a result file.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from eotd.protocol import BASELINE, THOUGHT_LABELS
from eotd.report import (ablation_headline, dataset_order, headline, headline_strategies, interval, is_headline,
                         method_order, read_json)


def _share(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part / whole:.1f} %)" if whole else f"{part}/0"


def _reasons(reasons: dict[str, int], k: int = 3) -> str:
    rejected = sorted(((n, r) for r, n in reasons.items() if r != "ok"), reverse=True)[:k]
    return ", ".join(f"`{r}` × {n}" for n, r in rejected) or "none"


def synthesis(out: Path) -> str:
    """01: the teacher, how many rationales it wrote and how many survived verification, per thought type."""
    s = read_json(Path(out) / "synthesis_summary.json")
    types = s["types"]
    kind = "an LLM" if s["teacher_is_llm"] else "not an LLM: rationales derived from gold worked solutions"
    generated = sum(t["generated"] for t in types.values())
    verified = sum(t["verified"] for t in types.values())
    lines = [f"**01 · Data synthesis.** Teacher `{s['teacher']}` ({kind}) wrote {generated} rationales for "
             f"{s['questions']} `{s['train_dataset']}` questions; {_share(verified, generated)} verified "
             f"and {s['etd_kept']} kept for training."]
    lines += [f"- {THOUGHT_LABELS[t]}: {_share(v['verified'], v['generated'])} verified; rejected: "
              f"{_reasons(v['reasons'])}"
              for t, v in types.items()]
    lines.append(f"- Teacher calls this run: {s['new_teacher_calls']}, {s['tokens']['total']:,} tokens, "
                 f"${s['cost']:.2f}{' (stopped by the budget cap)' if s['stopped_by_budget'] else ''}.")
    return "\n".join(lines)


def verification(out: Path) -> str:
    """02: acceptance per thought type and the commonest reasons for rejection."""
    v = read_json(Path(out) / "verification_summary.json")
    total = sum(t["total"] for t in v.values())
    verified = sum(t["verified"] for t in v.values())
    lines = [f"**02 · Verification.** {_share(verified, total)} rationales pass their verifier (CoT: the answer "
             "read from the text; PoT: the program run in the sandbox; EoT: the system solved by sympy)."]
    lines += [f"- {THOUGHT_LABELS[t]}: {_share(s['verified'], s['total'])}; rejected: {_reasons(s['reasons'])}"
              for t, s in v.items()]
    return "\n".join(lines)


def fine_tuning(out: Path) -> str:
    """03: each student's steps, tokens, speed and loss from first to last step."""
    figures = pd.read_csv(Path(out) / "training_figures.csv", index_col=0)
    losses = pd.read_csv(Path(out) / "training_losses.csv")
    lines = [f"**03 · Fine-tuning.** {len(figures)} students trained from the same base model:"]
    for method, row in figures.iterrows():
        curve = losses.loc[losses["method"] == method, "loss"]
        loss = f"loss {curve.iloc[0]:.3f} → {curve.iloc[-1]:.3f}" if len(curve) else "no loss recorded"
        how = "reused from an earlier run" if row["reused"] else "trained now"
        lines.append(f"- {method}: {int(row['steps'])} steps, {int(row['train tokens']):,} tokens in "
                     f"{int(row['seconds'])} s ({row['tokens/s']:.0f} tokens/s), {loss} ({how}).")
    return "\n".join(lines)


def _versus_base(best: pd.Series, base: pd.Series | None) -> str:
    if base is None:
        return ""
    gap = 100 * (best["accuracy"] - base["accuracy"])
    apart = best["ci_low"] > base["ci_high"] or best["ci_high"] < base["ci_low"]
    return (f"; {BASELINE} {interval(base)}: {gap:+.1f} points, the intervals "
            f"{'do not overlap' if apart else 'overlap'}")


def evaluation(out: Path) -> str:
    """04: per dataset, the best method against the baseline (headline strategies, 95 % Wilson intervals), ETD's
    strategies and what decontamination removed."""
    out = Path(out)
    acc = pd.read_csv(out / "accuracy.csv")
    rows, chosen = headline(acc), headline_strategies(acc)
    lines = ["**04 · Evaluation.** Accuracy with 95 % Wilson intervals, each method at its headline strategy ("
             + ", ".join(f"{m} `{s}`" for m, s in chosen.items()) + "):"]
    for dataset in dataset_order(rows["dataset"]):
        part = rows[rows["dataset"] == dataset].set_index("method")
        students = part.drop(index=BASELINE, errors="ignore")
        n = "/".join(str(k) for k in sorted(set(part["n"].astype(int))))
        if students.empty or students["accuracy"].max() == 0:
            lines.append(f"- `{dataset}` (n = {n}): no distilled student answers any problem correctly"
                         + (f" ({BASELINE} {interval(part.loc[BASELINE])})" if BASELINE in part.index else "") + ".")
            continue
        top = [m for m in method_order(students.index) if students.loc[m, "accuracy"] == students["accuracy"].max()]
        others = ", ".join(f"{m} {100 * students.loc[m, 'accuracy']:.1f} %"
                           for m in method_order(students.index) if m not in top)
        base = part.loc[BASELINE] if BASELINE in part.index else None
        lines.append(f"- `{dataset}` (n = {n}): best **{' and '.join(top)} {interval(students.loc[top[0]])}**"
                     f"{_versus_base(students.loc[top[0]], base)}. Others: {others or 'none'}.")
    etd = acc[(acc["method"] == "ETD") & acc["dataset"].map(is_headline)]
    if etd["strategy"].nunique() > 1:
        pooled = etd.groupby("strategy")[["correct", "n"]].sum()
        pooled = (pooled["correct"] / pooled["n"]).sort_values(ascending=False)
        lines.append(f"- ETD by strategy, pooled over its {etd['dataset'].nunique()} sets "
                     f"({int(etd.groupby('dataset')['n'].max().sum())} problems): "
                     + ", ".join(f"`{s}` {100 * a:.1f} %" for s, a in pooled.items()) + ".")
    lines += _seed_lines(out, chosen)
    stage = read_json(out / "run.json").get("stages", {}).get("04_evaluation", {})
    domains = stage.get("domains") or {}
    if domains:
        lines.append("- Domains: " + "; ".join(f"`{d}` {kind}" for d, kind in domains.items()) + ".")
    contamination = stage.get("contamination", [])
    removed = [c for c in contamination if c["n_overlap"]]
    lines.append("- Decontamination: " + ("; ".join(f"{c['n_overlap']} of {c['n_eval']} `{c['eval_set']}` items "
                                                     "overlap the training questions and are reported apart"
                                                     for c in removed)
                                           if removed else "no benchmark item overlaps the training questions")
                 + ".")
    return "\n".join(lines)


def _seed_lines(out: Path, chosen: dict[str, str]) -> list[str]:
    """Training noise (each multi-seed method's spread over seeds) and which method differences hold across seeds
    (method_comparisons.csv: a paired test on the same problems and every seed agreeing)."""
    lines = []
    by_seed_file, comparisons_file = out / "accuracy_by_seed.csv", out / "method_comparisons.csv"
    if by_seed_file.exists():
        by_seed = pd.read_csv(by_seed_file)
        by_seed = by_seed[by_seed["strategy"] == by_seed["method"].map(chosen)]
        seeds = by_seed.groupby("method")["seed"].nunique()
        lines.append("- Training seeds (data order): " + ", ".join(f"{m} {seeds[m]}" for m in method_order(seeds.index))
                     + "; a method's accuracy above is its mean over seeds.")
        spread = by_seed[by_seed["method"].map(seeds) > 1].groupby(["method", "dataset"])["accuracy"].agg(["min", "max"])
        for method in method_order(spread.index.get_level_values("method")):
            part = spread.loc[method]
            widest = (part["max"] - part["min"]).idxmax()
            lines.append(f"- {method} across its {seeds[method]} seeds: " + ", ".join(
                f"`{d}` {100 * r['min']:.1f}–{100 * r['max']:.1f} %" for d, r in part.iterrows())
                + f" (widest on `{widest}`: {100 * (part.loc[widest, 'max'] - part.loc[widest, 'min']):.1f} points).")
    comparisons = pd.read_csv(comparisons_file) if comparisons_file.exists() else pd.DataFrame()
    if len(comparisons):  # one method alone has no pairs
        comparisons = comparisons[comparisons["dataset"].map(is_headline)]
        holds = comparisons[comparisons["verdict"].str.contains(" beats ")]
        ahead = comparisons[comparisons["verdict"].str.contains(" ahead of ")]
        lines.append(f"- Differences that hold across seeds (exact McNemar test p < 0.05 on the same problems, and "
                     f"every seed of the winner above every seed of the other): {len(holds)} of {len(comparisons)} "
                     "method pairs" + (": " + "; ".join(
                         f"{r['verdict']} on `{r['dataset']}` (p = {r['p_value']:.2g})" for _, r in holds.iterrows())
                         if len(holds) else "") + ".")
        if len(ahead):
            lines.append("- Ahead by the test, but a method of the pair was trained with one seed only, so its "
                         "training noise is not measured and this is not claimed: " + "; ".join(
                             f"{r['verdict'].removesuffix(' on one training seed')} on `{r['dataset']}` "
                             f"(p = {r['p_value']:.2g})" for _, r in ahead.iterrows()) + ".")
        lines.append("- Every other difference is within training noise.")
    return lines


def ablations(out: Path) -> str:
    """05: each ablation's variants side by side per dataset, and whether their intervals separate."""
    path = Path(out) / "ablation_accuracy.csv"
    table = pd.read_csv(path) if path.exists() else pd.DataFrame()
    if table.empty:
        return "**05 · Ablations.** None configured for this run."
    rows = ablation_headline(table)
    lines = ["**05 · Ablations** (each variant at its own strategy, 95 % Wilson intervals):"]
    for (name, dataset), part in rows.groupby(["ablation", "dataset"], sort=False):
        part = part.sort_values("accuracy", ascending=False)
        top, rest = part.iloc[0], part.iloc[1:]
        separate = len(rest) and top["ci_low"] > rest["ci_high"].max()
        verdict = (f"best {top['variant']}, its interval above every other's" if separate
                   else "the intervals overlap" if len(rest) else "one variant")
        cells = "; ".join(f"{r['variant']} {interval(r)} ({int(r['train_examples'])} examples)"
                          for _, r in part.iterrows())
        lines.append(f"- {name.replace('_', ' ')} on `{dataset}` (n = {int(part['n'].max())}): {cells} — {verdict}.")
    return "\n".join(lines)


def plots(out: Path) -> str:
    """06: the figures written and how the reference numbers relate to ours."""
    out = Path(out)
    figures = sorted(p.name for p in out.glob("fig_*.png"))
    reference = pd.read_csv(out / "reference_comparison.csv") if (out / "reference_comparison.csv").exists() else None
    lines = [f"**06 · Plots.** {len(figures)} figure{'' if len(figures) == 1 else 's'}: "
             + ", ".join(f"`{f}`" for f in figures) + "."]
    if reference is not None:
        refs = reference[reference["kind"] == "reference"]
        lines.append(f"- `reference_comparison.csv` puts our headline rows beside {len(refs)} published numbers "
                     "(other students, teachers and hardware: context, not comparable).")
    return "\n".join(lines)


STAGES = {"01_data_synthesis": synthesis, "02_verification": verification, "03_fine_tuning": fine_tuning,
          "04_evaluation": evaluation, "05_ablations": ablations, "06_plots": plots}


def for_stage(stage: str, out: Path) -> str:
    """The summary of stage `stage` (a notebook's stem, e.g. "04_evaluation")."""
    return STAGES[stage](out)

