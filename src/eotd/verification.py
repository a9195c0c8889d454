"""Stage 02, verification: every rationale is verified once, and the verified ones become the students' training data.

Input: the teacher's rationales that 01 wrote, or an outside set (params `rationales_file`: JSONL of
{question_id, question, thought, rationale, gold}). Output: `verified.jsonl` and `verification_summary.json` in
results/<name>/, the verdicts added to 01's `synthesis_summary.json`, and the training splits in the cache (one per
thought type, plus "etd", all types mixed) that 03 trains from. `python -m eotd.verification params/X.yaml` runs the
stage outside a notebook.
"""
from __future__ import annotations

import argparse
import json
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import datasets

from eotd import paths, records, synthesis
from eotd.answers import from_json, parse_number, to_json
from eotd.data import Problem
from eotd.params import Params
from eotd.equations import inverts
from eotd.protocol import ETD_SPLIT, FORWARD_EOT_METHOD, FORWARD_EOT_SPLIT, THOUGHTS
from eotd.params import load as load_params
from eotd.verify import summarize, verify_many

SUMMARY = "verification_summary.json"
VERIFIED = "verified.jsonl"
FILE_FIELDS = ("question_id", "question", "thought", "rationale", "gold")  # a rationales_file's required keys


class VerificationError(RuntimeError):
    """A thought type ended with no verified rationale: there is nothing to train its student on."""


def _file_rows(source: Path) -> list[dict]:
    """A rationales_file's rows, checked: every key present, a known thought type, text, and a gold answer that reads
    as a number (stored as answers.to_json text, like the teacher's)."""
    rows = []
    for number, row in enumerate(records.read_jsonl(source, required=FILE_FIELDS), 1):
        where = f"{source}: rationale {number}"
        if row["thought"] not in THOUGHTS:
            raise ValueError(f"{where}: thought {row['thought']!r} is not one of {list(THOUGHTS)}")
        if not isinstance(row["rationale"], str) or not isinstance(row["question"], str):
            raise ValueError(f"{where}: question and rationale must be text")
        gold = parse_number(row["gold"]) if isinstance(row["gold"], (str, int, float)) else None
        if gold is None:
            raise ValueError(f"{where}: gold {row['gold']!r} is not a number")
        rows.append({**{key: row[key] for key in FILE_FIELDS}, "dataset": "rationales_file", "gold": to_json(gold),
                     "variant": "", "sample_index": 0, "error": None, "schema": None, "cue": None})
    return rows


def read(p: Params) -> tuple[Path, list[dict]]:
    """(where they come from, rows): the params' rationales_file, else what 01 wrote, of p.thought_types."""
    if p.rationales_file:
        source = paths.project_path(p.rationales_file)
        rows = _file_rows(source)
    else:
        source = synthesis.rationales_path(p)
        rows = synthesis.read_rationales(p)
    return source, [r for r in rows if r["thought"] in p.thought_types]


def training_problems(p: Params) -> list[Problem]:
    """The questions the students train on (what evaluation decontaminates against): a rationales_file's, else the
    synthesis stage's."""
    if not p.rationales_file:
        return synthesis.training_problems(p)
    first: dict[str, dict] = {}
    for row in _file_rows(paths.project_path(p.rationales_file)):
        first.setdefault(row["question_id"], row)
    return [Problem(qid, r["dataset"], r["question"], from_json(r["gold"])) for qid, r in first.items()]


def verify_rows(rows: list[dict], p: Params, progress: bool = True) -> list[dict]:
    """The rows with their verdict (answer, correct, reason, detail); a request the teacher failed is not verified,
    its reason is "teacher:<error>"."""
    written = [r for r in rows if r["rationale"] is not None]
    verdicts = iter(verify_many(((r["thought"], r["rationale"], from_json(r["gold"])) for r in written),
                                timeout=p.verify_timeout, memory_mb=p.verify_memory_mb, progress=progress))
    out = []
    for row in rows:
        if row["rationale"] is None:
            out.append({**row, "answer": None, "correct": False, "reason": f"teacher:{row['error']}", "detail": ""})
        else:
            v = next(verdicts)
            out.append({**row, "answer": to_json(v.answer), "correct": v.correct, "reason": v.reason,
                        "detail": v.detail})
    return out


def kept_rows(rows: list[dict]) -> list[dict]:
    """Verified rationales, without exact duplicates of the same question, thought type and variant."""
    seen, kept = set(), []
    for row in rows:
        key = (row["question_id"], row["thought"], row.get("variant") or "",
               row["rationale"].strip() if row["rationale"] else None)
        if row["correct"] and key not in seen:
            seen.add(key)
            kept.append(row)
    return kept


def type_counts(rows: list[dict], kept: list[dict], thought_types: list[str]) -> dict[str, dict]:
    """Per thought type: rationales requested, written ("generated"), verified and kept, and the reasons for every
    verdict (teacher failures included), commonest first."""
    types = {}
    for thought in thought_types:
        mine = [r for r in rows if r["thought"] == thought]
        types[thought] = {"requested": len(mine), "generated": sum(r["rationale"] is not None for r in mine),
                          "verified": sum(r["correct"] for r in mine),
                          "kept": sum(r["thought"] == thought for r in kept),
                          "reasons": dict(Counter(r["reason"] for r in mine).most_common())}
    return types


def eot_form(row: dict) -> str:
    """What a verified EoT rationale is: "inverts" (the solver must invert it, equations.inverts), "text_forward" (the
    text's own relation with the result as its unknown) or "forward_fallback" (no rule read the question: the forward
    calculation spelled as equations)."""
    if inverts(row["rationale"]):
        return "inverts"
    return "text_forward" if row.get("schema") not in (None, "forward") else "forward_fallback"


EOT_FORMS = ("inverts", "text_forward", "forward_fallback")


def eot_forms(rows: list[dict]) -> dict[str, dict]:
    """verification_summary.json's `eot_forms`: per training source and `all`, the verified EoT rationales (of the
    main teacher) by eot_form, their count and the share that inverts."""
    verified = [r for r in rows if r["thought"] == "eot" and r["correct"] and not r.get("variant")]
    out = {}
    for source in [*dict.fromkeys(r["dataset"] for r in verified), "all"]:
        mine = [r for r in verified if source in ("all", r["dataset"])]
        counts = Counter(eot_form(r) for r in mine)
        out[source] = {**{form: counts[form] for form in EOT_FORMS}, "verified": len(mine),
                       "inverts_share": round(counts["inverts"] / len(mine), 4) if mine else None}
    return out


def add_verdicts(summary: dict, types: dict[str, dict], etd_kept: int) -> dict:
    """01's synthesis summary with the per-type counts of type_counts and how many rationales ETD may train on."""
    items = [(k, v) for k, v in {**summary, "types": types}.items() if k != "etd_kept"]
    at = [k for k, _ in items].index("types") + 1
    return dict(items[:at] + [("etd_kept", etd_kept)] + items[at:])


def check_nonempty(types: dict[str, dict]) -> None:
    empty = [t for t, counts in types.items() if counts["kept"] == 0]
    if empty:
        lines = "; ".join(f"{t}: {types[t]['requested']} rationales, 0 verified (reasons: "
                          f"{', '.join(f'{r} x{n}' for r, n in list(types[t]['reasons'].items())[:4]) or 'none'})"
                          for t in empty)
        raise VerificationError(f"no verified rationale for {', '.join(empty)} — {lines}. Fix the teacher (see the "
                                "reasons; a teacher:... reason means its calls failed) or drop the type from "
                                "thought_types.")


def acceptance_table(types: dict[str, dict]):
    """Per thought type (type_counts): rationales written, verified and kept, and the acceptance rate."""
    import pandas as pd

    table = pd.DataFrame(types).T[["generated", "verified", "kept"]].astype(int)
    table = table.rename(columns={"generated": "written"})
    table["acceptance"] = (table["verified"] / table["written"].where(table["written"] > 0)).round(3)
    return table


def train_folder(p: Params) -> Path:
    return paths.cache_dir("verification") / p.name / "train"


def save_splits(kept: list[dict], p: Params) -> Path:
    """The training data on disk: one split per thought type, "etd" (every kept rationale) and, when 01 wrote the
    forward EoT, "eot_forward"."""
    main = [r for r in kept if not r.get("variant")]
    splits = {t: [r for r in main if r["thought"] == t] for t in p.thought_types}
    splits[ETD_SPLIT] = main
    if forward := [r for r in kept if r.get("variant") == synthesis.FORWARD]:
        splits[FORWARD_EOT_SPLIT] = forward
    features = datasets.Dataset.from_list(kept).features
    data = datasets.DatasetDict({name: datasets.Dataset.from_list(split, features=features)
                                 for name, split in splits.items()})
    data.save_to_disk(str(train_folder(p)))
    return train_folder(p)


@dataclass
class Verification:
    source: Path
    rows: list[dict]
    kept: list[dict]
    types: dict[str, dict]  # type_counts: what synthesis_summary.json's "types" holds after 02
    summary: dict  # per thought type: total, verified, inverts, reasons, acceptance (verification_summary.json's)
    eot_forms: dict[str, dict]  # verification_summary.json's `eot_forms`


def _with_verdicts(summary: dict, p: Params, rows: list[dict], types: dict[str, dict], etd_kept: int) -> dict:
    """synthesis_summary.json as 02 leaves it: 01's record with the verdicts added; with a rationales_file, also its
    questions (01 ran no teacher)."""
    if p.rationales_file:
        questions = len({r["question_id"] for r in rows})
        summary = {**summary, "questions": questions, "sources": {"rationales_file": questions}}
    return add_verdicts(summary, types, etd_kept)


def run(p: Params, progress: bool = True) -> Verification:
    """The whole stage: rationales -> verdicts -> verified.jsonl, summaries and the training splits. The previous
    splits go first, so a failed run leaves none for 03 to train on."""
    shutil.rmtree(train_folder(p), ignore_errors=True)
    source, rows = read(p)
    rows = verify_rows(rows, p, progress)
    rows = [{**r, "eot_form": eot_form(r) if r["thought"] == "eot" and r["correct"] else None} for r in rows]
    kept = kept_rows(rows)
    main = [r for r in rows if not r.get("variant")]
    types = type_counts(main, [r for r in kept if not r.get("variant")], p.thought_types)
    out = paths.results_dir(p.name)
    summary = summarize([r for r in main if r["rationale"] is not None])
    forms = eot_forms(rows)
    written = {**summary, "eot_forms": forms}
    if forward := [r for r in rows if r.get("variant") and r["rationale"] is not None]:
        written[FORWARD_EOT_SPLIT] = summarize(forward)["eot"]
    records.write_json(out / SUMMARY, written)
    records.write_jsonl(out / VERIFIED, [r for r in rows if r["correct"]])
    synthesis_summary = out / synthesis.SUMMARY
    if synthesis_summary.exists():  # absent only when 02 runs alone on a rationales_file
        records.write_json(synthesis_summary,
                           _with_verdicts(json.loads(synthesis_summary.read_text()), p, rows, types,
                                          sum(not r.get("variant") for r in kept)))
    check_nonempty(types)
    if FORWARD_EOT_METHOD in p.methods and not any(r.get("variant") for r in kept):
        raise VerificationError(f"no verified forward EoT for {FORWARD_EOT_METHOD}: 01 wrote none (re-run "
                                "01_data_synthesis with this method in the params)")
    save_splits(kept, p)
    return Verification(source, rows, kept, types, summary, forms)


def load_train_splits(p: Params) -> datasets.DatasetDict:
    """The training data `run` wrote: one split per thought type, "etd" (all types mixed), and "eot_forward"."""
    folder = train_folder(p)
    if not folder.exists():
        raise FileNotFoundError(f"no verified training data for {p.name!r} at {paths.relative(folder)}; run "
                                "02_verification first (after 01_data_synthesis)")
    return datasets.load_from_disk(str(folder))


def train_split_files(p: Params) -> list[Path]:
    """The files of the saved training splits (hashed into later stages' run.json)."""
    return sorted(f for f in train_folder(p).rglob("*") if f.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the verification stage on a params file.")
    parser.add_argument("params_file")
    args = parser.parse_args()
    try:
        result = run(load_params(args.params_file))
    except (VerificationError, FileNotFoundError, ValueError) as exc:
        raise SystemExit(f"[eotd.verification] {exc}") from None
    print({t: (s["total"], s["verified"]) for t, s in result.summary.items()}, result.eot_forms.get("all"))


if __name__ == "__main__":
    main()
