"""What each stage found, in a few sentences of markdown generated from the files it wrote in results/<name>/.

Each stage notebook ends with its summary and `report.html` opens with all of them, so every number a reader sees
there comes from a result file.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from eotd.protocol import (BASELINE, THOUGHT_LABELS, all_forms, headline_strategies, is_headline, method_order,
                           split_label)
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
    """02: per thought type, on one denominator (the rationales requested from the teacher): how many it wrote, how
    many of those its verifier passed and why the rest were rejected; what is kept for training; how relational the
    EoT is."""
    summary = read_json(Path(out) / "verification_summary.json")
    synthesis_summary = read_json(Path(out) / "synthesis_summary.json")
    types = synthesis_summary.get("types") or {}
    requested = sum(t.get("requested", 0) for t in types.values())
    verified = sum(t.get("verified", 0) for t in types.values())
    kept = synthesis_summary.get("etd_kept")
    lines = [f"**02 · Verification.** {_share(verified, requested)} requested rationales were written and pass "
             "their verifier (CoT: the answer read from the text; PoT: the program run in the sandbox; EoT: the system "
             "solved by sympy)" + (f"; {kept} kept for training (exact duplicates dropped)." if kept is not None
                                   else ".")]
    for thought, t in types.items():
        reasons = t.get("reasons", {})
        unwritten = {r.removeprefix("teacher:"): n for r, n in reasons.items() if r.startswith("teacher:")}
        rejected = {r: n for r, n in reasons.items() if not r.startswith("teacher:")}
        written = t.get("generated", t["requested"])
        lines.append(f"- {THOUGHT_LABELS[thought]}: {_share(t['verified'], t['requested'])} pass; "
                     f"{t['requested'] - written} not written" + (f" ({_reasons(unwritten)})" if unwritten else "")
                     + f", {written - t['verified']} rejected by the verifier"
                     + (f" ({_reasons(rejected)})" if written - t["verified"] else "") + ".")
    if forward := summary.get("eot_forward"):
        lines.append(f"- Forward EoT (EoTD-forward's data): {_share(forward['verified'], forward['total'])} written "
                     "ones pass.")
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
    """03: per method, how many students this run trained and how many it reused from the cache (trained by an
    earlier run with the same data and settings), their speed, and their smoothed loss (means of the first and of the
    last 10 % of steps: one batch's loss swings with its examples), as a table."""
    figures = pd.read_csv(Path(out) / "training_figures.csv", index_col=0)
    losses = pd.read_csv(Path(out) / "training_losses.csv")
    trained = int((~figures["reused"].astype(bool)).sum())
    lines = [f"**03 · Fine-tuning.** {len(figures)} students from the same base model: {trained} trained in this "
             f"run, {len(figures) - trained} reused from the cache.", "",
             "| method | students | trained / reused | tokens/s | loss, first → last 10 % of steps |",
             "|---|---:|---|---|---|"]
    figures = figures.assign(method=[split_label(label)[0] for label in figures.index])
    for method in method_order(figures["method"]):
        rows = figures[figures["method"] == method]
        ends = [smoothed_losses(losses.loc[losses["method"] == label].sort_values("step")["loss"])
                for label in rows.index if (losses["method"] == label).any()]
        loss = (f"{min(e[0] for e in ends):.2f}–{max(e[0] for e in ends):.2f} → "
                f"{min(e[1] for e in ends):.2f}–{max(e[1] for e in ends):.2f}" if ends else "—")
        reused = int(rows["reused"].astype(bool).sum())
        speed = rows["tokens/s"]
        lines.append(f"| {method} | {len(rows)} | {len(rows) - reused} / {reused} | "
                     f"{speed.min():.0f}–{speed.max():.0f} | {loss} |")
    return "\n".join(lines)


def _tenth(curve: pd.Series) -> int:
    return max(1, round(len(curve) / 10))


def smoothed_losses(curve: pd.Series) -> tuple[float, float]:
    """(mean of the first 10 % of a loss curve's steps, mean of the last 10 %); at least one step each."""
    k = _tenth(curve)
    return float(curve.iloc[:k].mean()), float(curve.iloc[-k:].mean())


def evaluation(out: Path) -> str:
    """04: per dataset, every method's accuracy (headline strategies, 95 % intervals), ETD's strategies, training
    noise, the verdicts of the comparison test (the one decision rule: a difference is decided when its
    Holm-adjusted p < 0.05), what stating relations did (EoTD against EoTD-forward and PoTD, all problems and inverse
    ones), what the design can find, what the EoT is and what decontamination removed."""
    out = Path(out)
    acc = pd.read_csv(out / "accuracy.csv")
    rows, chosen = headline(acc), headline_strategies(acc)
    lines = ["**04 · Evaluation.** Accuracy with 95 % intervals (a method with several training seeds: its seed mean, "
             "the interval over seeds and problems; one run: Wilson over problems), each method at its headline "
             "strategy ("
             + ", ".join(f"{m} `{s}`" for m, s in chosen.items()) + ")."]
    lines += _comparison_lines(out)
    lines += _form_lines(out)
    for dataset in dataset_order(rows["dataset"]):
        part = rows[rows["dataset"] == dataset].set_index("method")
        students = part.drop(index=BASELINE, errors="ignore")
        n = "/".join(str(k) for k in sorted(set(part["n"].astype(int))))
        if students.empty or students["accuracy"].max() == 0:
            lines.append(f"- `{dataset}` (n = {n}): no distilled student answers any problem correctly"
                         + (f" ({BASELINE} {interval(part.loc[BASELINE])})" if BASELINE in part.index else "") + ".")
            continue
        lines.append(f"- `{dataset}` (n = {n}): " + ", ".join(f"{m} {interval(part.loc[m])}"
                                                             for m in method_order(part.index)) + ".")
    etd = acc[(acc["method"] == "ETD") & acc["dataset"].map(is_headline)]
    if etd["strategy"].nunique() > 1:
        pooled = etd.groupby("strategy")[["correct", "n"]].sum()
        pooled = (pooled["correct"] / pooled["n"]).sort_values(ascending=False)
        lines.append(f"- ETD by strategy, pooled over its {etd['dataset'].nunique()} sets "
                     f"({int(etd.groupby('dataset')['n'].max().sum())} problems): "
                     + ", ".join(f"`{s}` {100 * a:.1f} %" for s, a in pooled.items()) + ".")
    lines += _seed_lines(out, chosen)
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
        methods = method_order(spread.index.get_level_values("method"))
        if methods:
            datasets = dataset_order(spread.index.get_level_values("dataset"))
            lines += ["", "Accuracy range over each method's training seeds (lowest–highest seed, %):", "",
                      "| method | " + " | ".join(f"`{d}`" for d in datasets) + " |",
                      "|---|" + "---|" * len(datasets)]
            for method in methods:
                part = spread.loc[method]
                lines.append(f"| {method} | " + " | ".join(
                    f"{100 * part.loc[d, 'min']:.1f}–{100 * part.loc[d, 'max']:.1f}" if d in part.index else "—"
                    for d in datasets) + " |")
            lines.append("")
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

    decided = ["", "Decided differences (A − B in points, unadjusted 95 % interval, Holm-adjusted p):", "",
               "| set | verdict | A − B | 95 % interval | Holm p |", "|---|---|---:|---|---:|"]
    for r in beats.to_dict("records"):
        sign = 1 if r["verdict"].startswith(r["a"] + " ") else -1
        low, high = sorted((sign * r["diff_low"], sign * r["diff_high"]))
        decided.append(f"| `{r['dataset']}` | {r['verdict']} | {_points(sign * r['diff'])} | "
                       f"[{_points(low)}, {_points(high)}] | {r['p_holm']:.2g} |")
    per_set = comparisons.groupby("dataset").size()
    lines = [f"- Method differences (A − B in points with its unadjusted 95 % interval over training seeds and "
             f"problems; decided when the Holm-adjusted p over the {'/'.join(str(k) for k in sorted(set(per_set)))} "
             f"pairs of a set is under 0.05, so an interval that excludes 0 can still be undecided): "
             f"{len(beats)} of {len(comparisons)} pairs decided" + (": " + "; ".join(map(lead, beats.to_dict(
                 "records"))) if len(beats) else "") + "."] + (decided + [""] if len(beats) else [])
    if len(ahead):
        lines.append("- Ahead, but a method of the pair was trained with one seed only, so its training noise is "
                     "unmeasured and this is not claimed: " + "; ".join(map(lead, ahead.to_dict("records"))) + ".")
    # intervals that hold training noise: both methods trained with several seeds
    trained = comparisons[(comparisons["a_seeds"] > 1) & (comparisons["b_seeds"] > 1)]
    for dataset, part in trained.groupby("dataset", sort=False):
        lines.append(f"- Between methods trained with several seeds on `{dataset}`: " + ", ".join(
            f"{r['a']} − {r['b']} {_points(r['diff'])} [{_points(r['diff_low'])}, {_points(r['diff_high'])}] "
            f"(Holm p {r['p_holm']:.2g})" for _, r in part.iterrows()) + ".")
    return lines


_FORM_PAIRS = (("EoTD", "EoTD-forward"), ("EoTD", "PoTD"))


def _form_lines(out: Path) -> list[str]:
    """How many evaluated problems each question form holds, how many of each student's EoT answers invert a
    relation (and how often those are right), then EoTD against EoTD-forward (relations stated vs the same questions'
    forward EoT) and against PoTD, on all problems and on the inverse ones, from method_comparisons.csv's form rows."""
    path = Path(out) / "method_comparisons.csv"
    comparisons = pd.read_csv(path) if path.exists() else pd.DataFrame()
    if comparisons.empty or "form" not in comparisons:
        return []
    lines = []
    predictions = pd.read_parquet(Path(out) / "predictions.parquet") \
        if (Path(out) / "predictions.parquet").exists() else pd.DataFrame()
    if "form" in predictions:
        problems = predictions.drop_duplicates(["dataset", "question_id"])
        problems = problems[problems["dataset"].map(is_headline).astype(bool)]
        counts = problems.groupby(["dataset", "form"]).size()
        lines.append("- Question forms of the evaluated problems (from their text: inverse, the unknown is not the "
                     "result; forward; unknown, no rule reads it): " + "; ".join(
                         f"`{d}` " + ", ".join(f"{f} {int(counts[d][f])}" for f in ("inverse", "forward", "unknown")
                                               if f in counts[d]) for d in dataset_order(counts.index.get_level_values(0)))
                     + ".")
        from eotd.evaluate import eot_inversions

        inversions = eot_inversions(predictions.to_dict("records"))
        if len(inversions):
            lines.append("- EoT answers that invert a relation: " + "; ".join(
                f"{r['method']} {_share(int(r['inverting']), int(r['answers']))}"
                + (f", right {100 * r['accuracy_inverting']:.1f} % vs {100 * r['accuracy_other']:.1f} % for the rest"
                   if pd.notna(r["accuracy_inverting"]) and pd.notna(r["accuracy_other"]) else "")
                for r in inversions.to_dict("records")) + ".")
    for a, b in _FORM_PAIRS:
        rows = comparisons[((comparisons["a"] == a) & (comparisons["b"] == b))
                           | ((comparisons["a"] == b) & (comparisons["b"] == a))]
        rows = rows[rows["form"].isin(("all", "inverse")) & rows["dataset"].map(is_headline).astype(bool)]
        if rows.empty:
            continue
        cells = []
        for _, r in rows.iterrows():
            sign = 1 if r["a"] == a else -1
            low, high = sorted((sign * r["diff_low"], sign * r["diff_high"]))
            cells.append(f"`{r['dataset']}`{' inverse' if r['form'] == 'inverse' else ''} "
                         f"{_points(sign * r['diff'])} [{_points(low)}, {_points(high)}]"
                         + ("" if r["verdict"] == "no clear difference" else f" ({r['verdict']})"))
        lines.append(f"- {a} − {b} (all problems, and the inverse ones where a set has them): " + ", ".join(cells)
                     + "; every other one no clear difference.")
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
            "a difference between two trained methods of at least these points is found in 80 % of studies like "
            "this one (smaller ones less often): " + "; ".join(cells[d] for d in dataset_order(cells)) + "."] \
        if cells else []


def ablations(out: Path) -> str:
    """05: each ablation's variants side by side per dataset, and whether their intervals separate."""
    path = Path(out) / "ablation_accuracy.csv"
    table = pd.read_csv(path) if path.exists() else pd.DataFrame()
    if table.empty:
        return "**05 · Ablations.** None configured for this run."
    rows = ablation_headline(table)
    lines = ["**05 · Ablations** (each variant at its own strategy, 95 % Wilson intervals; a variant is one training "
             "run, so these are measurements of those runs, not tested differences between variants):"]
    for (name, dataset), part in rows.groupby(["ablation", "dataset"], sort=False):
        cells = "; ".join(f"{r['variant']} {interval(r)} ({int(r['train_examples'])} examples)"
                          for _, r in part.iterrows())
        lines.append(f"- {name.replace('_', ' ')} on `{dataset}` (n = {int(part['n'].max())}): {cells}.")
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

