"""The verdict rule's error rates and power by simulation (the studies of tests/test_stats.py, in a table): how often
two equally good methods are called different, how often a method no better than the untrained base is said to beat
it, and how often a real difference is found, for 2-5 training seeds a side; beside them, the stacked McNemar rule
the study used before.

Run: .venv/bin/python tests/benchmarks/bench_stats.py   (about 10 seconds)
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the simulation lives in test_stats

import numpy as np  # noqa: E402
from test_stats import ALPHA, CEILING, PROBLEMS, SEED_SD, STUDIES, _claims, eotd_rule, stacked_mcnemar_rule  # noqa: E402

from eotd.stats import Runs  # noqa: E402


def versus_base(k: int, gain: float, seed: int) -> float:
    rng = np.random.default_rng(seed)
    claims = []
    for _ in range(STUDIES):
        chance = rng.beta(4, 8, PROBLEMS)
        base = Runs(rng.random((1, PROBLEMS)) < chance, trained=False)
        trained = Runs(rng.random((k, PROBLEMS)) < np.clip(chance + gain + rng.normal(0, SEED_SD, (k, 1)), 0, 1))
        claims.append(eotd_rule(trained, base))
    return float(np.mean(claims))


def main() -> None:
    print(f"{STUDIES} simulated studies per row, {PROBLEMS} problems, seed effect SD {SEED_SD:.2f}, level {ALPHA}; "
          f"a false-claim rate above {CEILING:.3f} fails the test")
    print(f"{'seeds A v B':>12} {'false claims':>13} {'stacked McNemar':>16} {'found +12 pts':>14} {'found +20 pts':>14}")
    for k_a, k_b in [(2, 2), (3, 2), (3, 3), (4, 4), (5, 5), (2, 5), (3, 5)]:
        rates = [_claims(eotd_rule, k_a, k_b), _claims(stacked_mcnemar_rule, k_a, k_b),
                 _claims(eotd_rule, k_a, k_b, 0.12), _claims(eotd_rule, k_a, k_b, 0.20)]
        print(f"{k_a:>7} v {k_b:<3} " + " ".join(f"{r:>{w}.3f}" for r, w in zip(rates, (13, 16, 14, 14))))
    print("trained vs the untrained base: " + ", ".join(
        f"{k} seeds: false claims {versus_base(k, 0.0, k):.3f}, +10 pts found {versus_base(k, 0.10, k):.3f}"
        for k in (2, 3, 5)))


if __name__ == "__main__":
    main()
