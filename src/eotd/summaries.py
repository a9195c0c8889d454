"""What each stage found, in a few sentences of markdown generated from the files it wrote in results/<name>/.

Each stage notebook ends with its summary and `report.html` opens with all of them, so every number a reader sees
there comes from a result file.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from eotd.protocol import BASELINE, THOUGHT_LABELS, all_forms, headline_strategies, is_headline, method_order
from eotd.tables import ablation_headline, dataset_order, headline, interval, read_json


def _share(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part / whole:.1f} %)" if whole else f"{part}/0"


def _reasons(reasons: dict[str, int], k: int = 3) -> str:
    rejected = sorted(((n, r) for r, n in reasons.items() if r != "ok"), reverse=True)[:k]
    return ", ".join(f"`{r}` × {n}" for n, r in rejected) or "none"


def synthesis(out: Path) -> str:
    """01: the teacher, and how many rationales it wrote per thought type."""
    s = read_json(Path(out) / "synthesis_summary.json")
    if s.get("rationales_file"):
        return (f"**01 · Data synthesis.** No teacher ran: 02 verifies the rationales of `{s['rationales_file']}` "
                "(params `rationales_file`).")
    types = s["types"]
    what = "an LLM" if s["teacher_is_llm"] else "not an LLM: rationales derived from gold worked solutions"
    sources = s.get("sources") or {s["train_dataset"]: s["questions"]}
    where = ", ".join(f"{n} `{name}`" + ("" if name == s["train_dataset"] else " (training fold)")
                      for name, n in sources.items())
    lines = [f"**01 · Data synthesis.** Teacher `{s['teacher']}` ({what}) wrote "
             f"{_share(sum(t['generated'] for t in types.values()), sum(t['requested'] for t in types.values()))} "
             f"requested rationales for {s['questions']} training questions ({where}); 02 verifies them."]
    lines += [f"- {THOUGHT_LABELS[t]}: {_share(v['generated'], v['requested'])} written" for t, v in types.items()]
    lines.append(f"- Teacher calls this run: {s['new_teacher_calls']}, {s['tokens']['total']:,} tokens, "
                 f"${s['cost']:.2f}{' (stopped by the budget cap)' if s['stopped_by_budget'] else ''}.")
    return "\n".join(lines)


def verification(out: Path) -> str:
    """02: acceptance per thought type, the commonest reasons for rejection, what is kept for training, and how
    relational the EoT is."""
    summary = read_json(Path(out) / "verification_summary.json")
    v = {t: s for t, s in summary.items() if t in THOUGHT_LABELS}
    total = sum(t["total"] for t in v.values())
    verified = sum(t["verified"] for t in v.values())
    kept = read_json(Path(out) / "synthesis_summary.json").get("etd_kept")
    lines = [f"**02 · Verification.** {_share(verified, total)} rationales pass their verifier (CoT: the answer "
             "read from the text; PoT: the program run in the sandbox; EoT: the system solved by sympy)"
             + (f"; {kept} kept for training (exact duplicates dropped)." if kept is not None else ".")]
    lines += [f"- {THOUGHT_LABELS[t]}: {_share(s['verified'], s['total'])}; rejected: {_reasons(s['reasons'])}"
              for t, s in v.items()]
    if forward := summary.get("eot_forward"):
        lines.append(f"- Forward EoT (EoTD-forward's data): {_share(forward['verified'], forward['total'])}")
    eot = eot_kind(out)
    return "\n".join(lines + ([f"- {eot}"] if eot else []))


def eot_kind(out: Path) -> str:
    """How relational the run's verified EoT rationales are (verification_summary.json's `eot_forms`): the share
    the solver must invert, per training source; "" when 02 verified no EoT."""
    forms = read_json(Path(out) / "verification_summary.json").get("eot_forms") or {}
    every = forms.get("all") or {}
    if not every.get("verified"):
        return ""
    per_source = ", ".join(f"{source} {_share(f['inverts'], f['verified'])}" for source, f in forms.items()
                           if source != "all")
    return (f"EoT: {_share(every['inverts'], every['verified'])} of the verified rationales state a relation the "
            f"solver must invert ({per_source}); {every['text_forward']} state the text's relation with the result "
            f"as the unknown and {every['forward_fallback']} are the forward calculation spelled as equations "
            "(no rule read the question).")


def fine_tuning(out: Path) -> str:
    """03: each student's steps, tokens, speed and smoothed loss (mean of the first and of the last 10 % of steps:
    one batch's loss swings with its examples)."""
    figures = pd.read_csv(Path(out) / "training_figures.csv", index_col=0)
    losses = pd.read_csv(Path(out) / "training_losses.csv")
    lines = [f"**03 · Fine-tuning.** {len(figures)} students trained from the same base model:"]
    for method, row in figures.iterrows():
        curve = losses.loc[losses["method"] == method].sort_values("step")["loss"]
        first, last = smoothed_losses(curve)
        loss = (f"loss {first:.3f} → {last:.3f} (means of the first and last {_tenth(curve)} steps)"
                if len(curve) else "no loss recorded")
        how = "reused from an earlier run" if row["reused"] else "trained now"
        lines.append(f"- {method}: {int(row['steps'])} steps, {int(row['train tokens']):,} tokens in "
                     f"{int(row['seconds'])} s ({row['tokens/s']:.0f} tokens/s), {loss} ({how}).")
    return "\n".join(lines)


def _tenth(curve: pd.Series) -> int:
    return max(1, round(len(curve) / 10))


def smoothed_losses(curve: pd.Series) -> tuple[float, float]:
    """(mean of the first 10 % of a loss curve's steps, mean of the last 10 %); at least one step each."""
    k = _tenth(curve)
    return float(curve.iloc[:k].mean()), float(curve.iloc[-k:].mean())


def _versus_base(best: pd.Series, base: pd.Series | None) -> str:
    if base is None:
        return ""
    gap = 100 * (best["accuracy"] - base["accuracy"])
    apart = best["ci_low"] > base["ci_high"] or best["ci_high"] < base["ci_low"]
    return (f"; {BASELINE} {interval(base)}: {gap:+.1f} points, the intervals "
            f"{'do not overlap' if apart else 'overlap'}")


def evaluation(out: Path) -> str:
    """04: per dataset, the best method against the baseline (headline strategies, 95 % intervals), ETD's
    strategies, training noise, the verdicts between methods, what the design can tell apart, what the EoT is and
    what decontamination removed."""
    out = Path(out)
    acc = pd.read_csv(out / "accuracy.csv")
    rows, chosen = headline(acc), headline_strategies(acc)
    lines = ["**04 · Evaluation.** Accuracy with 95 % intervals (a method with several training seeds: its seed mean, "
             "the interval over seeds and problems; one run: Wilson over problems), each method at its headline "
             "strategy ("
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
    lines += _comparison_lines(out)
    lines += _design_lines(out)
    if "EoTD" in chosen and (eot := eot_kind(out)):
        lines.append(f"- {eot}")
    stage = read_json(out / "run.json").get("stages", {}).get("04_evaluation", {})
    domains = stage.get("domains") or {}
    if domains:
        lines.append("- Domains: " + "; ".join(f"`{d}` {domain}" for d, domain in domains.items()) + ".")
    contamination = stage.get("contamination", [])
    removed = [c for c in contamination if c["n_overlap"]]
    lines.append("- Decontamination: " + ("; ".join(f"{c['n_overlap']} of {c['n_eval']} `{c['eval_set']}` items "
                                                     "overlap the training questions and are reported apart"
                                                     for c in removed)
                                           if removed else "no benchmark item overlaps the training questions")
                 + ".")
    return "\n".join(lines)


def _seed_lines(out: Path, chosen: dict[str, str]) -> list[str]:
    """Training noise: each multi-seed method's spread over its seeds."""
    lines = []
    by_seed_file = out / "accuracy_by_seed.csv"
    if by_seed_file.exists():
        by_seed = pd.read_csv(by_seed_file)
        by_seed = by_seed[(by_seed["strategy"] == by_seed["method"].map(chosen)) & by_seed["dataset"].map(is_headline)]
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
    return lines


def _points(x: float) -> str:
    return f"{100 * x:+.1f}"


def _comparison_lines(out: Path) -> list[str]:
    """The verdicts of method_comparisons.csv: pairs decided (Holm within each set), pairs ahead on one training
    seed, and every difference between trained methods with its interval."""
    path = Path(out) / "method_comparisons.csv"
    comparisons = pd.read_csv(path) if path.exists() else pd.DataFrame()
    if comparisons.empty:  # one method alone has no pairs
        return []
    comparisons = comparisons[comparisons["dataset"].map(is_headline) & all_forms(comparisons)]
    order = {d: i for i, d in enumerate(dataset_order(comparisons["dataset"]))}
    comparisons = comparisons.sort_values("dataset", key=lambda d: d.map(order), kind="stable")
    beats = comparisons[comparisons["verdict"].str.contains(" beats ")]
    ahead = comparisons[comparisons["verdict"].str.contains(" ahead of ")]

    def lead(r) -> str:
        sign = 1 if r["verdict"].startswith(r["a"] + " ") else -1
        low, high = sorted((sign * r["diff_low"], sign * r["diff_high"]))
        return (f"{r['verdict'].removesuffix(' on one training seed')} on `{r['dataset']}` by "
                f"{_points(sign * r['diff'])} points [{_points(low)}, {_points(high)}] (Holm p = {r['p_holm']:.2g})")

    per_set = comparisons.groupby("dataset").size()
    lines = [f"- Method differences (A − B in points, 95 % interval over training seeds and problems, p-values "
             f"Holm-corrected over the {'/'.join(str(k) for k in sorted(set(per_set)))} pairs of each set): "
             f"{len(beats)} of {len(comparisons)} pairs decided" + (": " + "; ".join(map(lead, beats.to_dict(
                 "records"))) if len(beats) else "") + "."]
    if len(ahead):
        lines.append("- Ahead, but a method of the pair was trained with one seed only, so its training noise is "
                     "unmeasured and this is not claimed: " + "; ".join(map(lead, ahead.to_dict("records"))) + ".")
    # intervals that hold training noise: both methods trained with several seeds
    trained = comparisons[(comparisons["a_seeds"] > 1) & (comparisons["b_seeds"] > 1)]
    for dataset, part in trained.groupby("dataset", sort=False):
        lines.append(f"- Between methods trained with several seeds on `{dataset}`: " + ", ".join(
            f"{r['a']} − {r['b']} {_points(r['diff'])} [{_points(r['diff_low'])}, {_points(r['diff_high'])}]"
            for _, r in part.iterrows()) + ".")
    return lines


def _design_lines(out: Path) -> list[str]:
    """design.csv in a sentence: the smallest difference between two trained methods this run's seeds and problems
    can find (80 % power), and what more seeds would buy."""
    path = Path(out) / "design.csv"
    design = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=["dataset"])
    design = design[design["dataset"].map(is_headline)]
    if design.empty:
        return []
    by_seed = pd.read_csv(Path(out) / "accuracy_by_seed.csv")
    k = int(by_seed.groupby("method")["seed"].nunique().max())
    more = int(design["seeds"].max())
    cells = {}
    for dataset, rows in design.groupby("dataset"):  # each set at its own size
        part = rows[rows["problems"] == rows["problems"].min()].set_index("seeds")
        if k in part.index:
            cells[dataset] = (f"`{dataset}` (n = {int(part['problems'].iloc[0])}) {100 * part.loc[k, 'detectable']:.0f}"
                              f", {100 * part.loc[more, 'detectable']:.0f} with {more} seeds")
    return [f"- Design (design.csv, from this run's spread between seeds and problems): with {k} seeds per method, "
            "differences between two trained methods under these points cannot be told apart (80 % power): "
            + "; ".join(cells[d] for d in dataset_order(cells)) + "."] if cells else []


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
    """06: the figures this run's 06 wrote (run.json's `results`; without that record, every figure in the folder)
    and how the reference numbers relate to ours."""
    out = Path(out)
    written = read_json(out / "run.json").get("stages", {}).get("06_plots", {}).get("results")
    figures = sorted(f for f in written if f.startswith("fig_") and f.endswith(".png")) if written is not None \
        else sorted(p.name for p in out.glob("fig_*.png"))
    reference = pd.read_csv(out / "reference_comparison.csv") if (out / "reference_comparison.csv").exists() else None
    lines = [f"**06 · Plots.** {len(figures)} figure{'' if len(figures) == 1 else 's'}: "
             + ", ".join(f"`{f}`" for f in figures) + "."]
    if reference is not None:
        refs = reference[reference["origin"] == "published"]
        lines.append(f"- `reference_comparison.csv` puts our headline rows beside {len(refs)} published numbers "
                     "(other students, teachers and hardware: context, not comparable).")
    return "\n".join(lines)


STAGES = {"01_data_synthesis": synthesis, "02_verification": verification, "03_fine_tuning": fine_tuning,
          "04_evaluation": evaluation, "05_ablations": ablations, "06_plots": plots}


def for_stage(stage: str, out: Path) -> str:
    """The summary of stage `stage` (a notebook's stem, e.g. "04_evaluation")."""
    return STAGES[stage](out)

