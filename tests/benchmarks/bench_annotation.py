"""The annotation teacher on the FULL GSM8K train and on GSM-Symbolic: conversion and verification rates.

Prints, per dataset: converted % (all three types written), verified % per type, all-three-verified %, the counts
of each conversion failure reason and of each verification failure reason.

    EOTD_DATA_DIR=/path/to/shared/data .venv/bin/python tests/benchmarks/bench_annotation.py [--symbolic N] [--show K]

EOTD_DATA_DIR defaults to the repository's sibling ../shared/data when it exists.
"""
from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

from eotd import verify_many
from eotd.data import load, load_gsm_symbolic
from eotd.paths import local_data_dir
from eotd.teachers.annotation import AnnotationTeacher
from eotd.teachers.base import Request

THOUGHTS = ("cot", "pot", "eot")


def data_dir() -> Path:
    path = local_data_dir()
    if not path.is_dir():
        sys.exit(f"no data folder at {path}: set EOTD_DATA_DIR")
    return path


def run(problems, show: int = 0) -> dict:
    """Teacher + verify_many over `problems`; returns the rates and reason counts (and prints them)."""
    teacher = AnnotationTeacher()
    start = time.perf_counter()
    requests = [Request(p.id, p.question, t, 0, p.solution) for p in problems for t in THOUGHTS]
    done = dict(((r.question_id, r.thought), c) for r, c in teacher.complete(requests))
    convert_s = time.perf_counter() - start
    by_id = {p.id: p for p in problems}
    items, keys = [], []
    fail_reasons = collections.Counter()
    for (qid, thought), c in done.items():
        if c.text is None:
            fail_reasons[(thought, c.error.split(":")[0])] += 1
        else:
            items.append((thought, c.text, by_id[qid].answer))
            keys.append((qid, thought))
    start = time.perf_counter()
    verdicts = verify_many(items)
    verify_s = time.perf_counter() - start
    ok = {key: v for key, v in zip(keys, verdicts)}
    n = len(problems)
    converted = sum(all(done[(p.id, t)].text is not None for t in THOUGHTS) for p in problems)
    per_type = {t: sum(ok.get((p.id, t)) is not None and ok[(p.id, t)].correct for p in problems) for t in THOUGHTS}
    all3 = sum(all(ok.get((p.id, t)) is not None and ok[(p.id, t)].correct for t in THOUGHTS) for p in problems)
    verify_reasons = collections.Counter((key[1], v.reason) for key, v in ok.items() if not v.correct)
    print(f"  {n} questions; convert {convert_s:.1f} s, verify {len(items)} rationales {verify_s:.1f} s")
    print(f"  converted (all three written): {converted / n:.2%} ({converted})")
    for t in THOUGHTS:
        print(f"  verified {t}: {per_type[t] / n:.2%} ({per_type[t]})")
    print(f"  all three verified: {all3 / n:.2%} ({all3})")
    print("  conversion failures (type, reason): " + ", ".join(f"{k[0]}/{k[1]}={v}" for k, v in
                                                                 sorted(fail_reasons.items())))
    print("  verification failures (type, reason): " + ", ".join(f"{k[0]}/{k[1]}={v}" for k, v in
                                                                   sorted(verify_reasons.items())))
    if show:
        bad = [(key, v) for key, v in ok.items() if not v.correct][:show]
        for (qid, thought), v in bad:
            print(f"--- {qid} {thought}: {v.reason} {v.answer} (gold {by_id[qid].answer}) {v.detail[:200]}")
            print(done[(qid, thought)].text)
    return {"n": n, "converted": converted, "verified": per_type, "all3": all3, "conversion_failures": fail_reasons,
            "verification_failures": verify_reasons}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbolic", type=int, default=2000, help="GSM-Symbolic items (seed 0, train split)")
    parser.add_argument("--show", type=int, default=0, help="print this many failed rationales per dataset")
    args = parser.parse_args()
    print("GSM8K train (full)")
    run(load("gsm8k_train", data_dir()), args.show)
    print(f"GSM-Symbolic ({args.symbolic} items, seed 0, train templates)")
    run(load_gsm_symbolic(args.symbolic, seed=0), args.show)


if __name__ == "__main__":
    main()
