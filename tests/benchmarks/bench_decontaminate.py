"""Overlap counts per (train set, eval set) with eotd.decontaminate's defaults, plus index build and query speed.

Run: .venv/bin/python tests/benchmarks/bench_decontaminate.py [n threshold]   (data: EOTD_DATA_DIR or ../shared/data)
"""
import sys
import time

from eotd.data import load, load_gsm_symbolic
from eotd.decontaminate import DEFAULT_N, DEFAULT_THRESHOLD, OverlapIndex, find_overlaps, report
from eotd.paths import local_data_dir

EVAL_SETS = ("gsm8k_test", "svamp", "asdiv", "multiarith", "gsm_hard")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_N
    threshold = float(sys.argv[2]) if len(sys.argv) > 2 else DEFAULT_THRESHOLD
    base = local_data_dir()
    evals = {name: load(name, base) for name in EVAL_SETS}
    sym_train = load_gsm_symbolic(2000, seed=0, split="train", by="template")
    sym_test = load_gsm_symbolic(2000, seed=0, split="test", by="template")
    evals["gsm_symbolic_test"] = sym_test
    trains = {"gsm_symbolic_train(2000)": sym_train, "gsm_symbolic_test(2000)": sym_test,
              "gsm_symbolic_all(4000)": list(sym_train) + list(sym_test), "gsm8k_train": load("gsm8k_train", base)}
    print(f"n={n} threshold={threshold}")
    print(f"{'train set':26s} {'eval set':18s} {'n_eval':>6s} {'n_overlap':>9s} {'max':>5s}")
    for tname, train in trains.items():
        for ename, evaluation in evals.items():
            if ename == "gsm_symbolic_test" and "gsm_symbolic_test" in tname or "gsm_symbolic_all" in tname \
                    and ename == "gsm_symbolic_test":
                continue
            rows = find_overlaps(train, evaluation, n=n, threshold=threshold)
            r = report(tname, ename, rows)
            top = max(row["overlap"] for row in rows)
            print(f"{tname:26s} {ename:18s} {r['n_eval']:6d} {r['n_overlap']:9d} {top:5.2f}")

    big_train = [p.question for p in trains["gsm8k_train"]] + [p.question for p in sym_train] \
        + [p.question for p in sym_test]  # ~11.5k
    queries = [p.question for p in evals["gsm8k_test"]] + [p.question for p in evals["svamp"]]  # ~2.3k
    start = time.perf_counter()
    index = OverlapIndex(big_train, n)
    built = time.perf_counter() - start
    start = time.perf_counter()
    for q in queries:
        index.score(q)
    queried = time.perf_counter() - start
    print(f"index: {len(big_train)} train questions ({index.unique} distinct n-gram sets) built in {built:.2f} s; "
          f"{len(queries)} queries in {queried:.2f} s = {len(queries) / queried:.0f}/s")


if __name__ == "__main__":
    main()
