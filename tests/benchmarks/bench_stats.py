"""The verdict rule's error rates and power by simulation (the worlds of tests/test_stats.py, in tables): how often
two equally good methods are called different, how often a method no better than the untrained base is said to beat
it, and how often a real difference is found, for 2-5 training seeds a side; beside them, the rules that fail the
tests: Welch's t on the seeds alone (no problem term), the SE that counts the seed x problem noise twice, and the
stacked McNemar rule over seeds. Then the design helper's SE against the simulated spread and the
accuracy interval's coverage.

Run: .venv/bin/python tests/benchmarks/bench_stats.py   (about 2 minutes)
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the simulation lives in test_stats

import numpy as np  # noqa: E402
from test_stats import (ALPHA, CEILING, PROBLEMS, SEEDS, STUDIES, WORLDS, _claims, double_count_rule,  # noqa: E402
                        eotd_rule, seeds_only_rule, stacked_mcnemar_rule)

from eotd.stats import components, mean_interval  # noqa: E402

RULES = {"eotd": eotd_rule, "no problem term": seeds_only_rule, "noise twice": double_count_rule,
         "stacked McNemar": stacked_mcnemar_rule}


def row(label: str, rates) -> str:
    return f"{label:>12} " + " ".join(f"{r:>16.3f}" for r in rates)


def main() -> None:
    print(f"{STUDIES} simulated studies per cell, {PROBLEMS} problems, level {ALPHA}; a false-claim rate above "
          f"{CEILING:.3f} fails the test")
    for name, world in WORLDS.items():
        rng = np.random.default_rng(0)
        found = [components(list(world.study(rng, 5, 5))) for _ in range(20)]
        print(f"\n{name}: accuracy {world.accuracy:.3f}, " + ", ".join(
            f"{part} SD {np.mean([getattr(c, part) for c in found]):.3f}" for part in ("seed", "noise", "pair")))
        print(f"{'false claims':>12} " + " ".join(f"{r:>16}" for r in RULES))
        for k_a, k_b in SEEDS:
            rates = [_claims(rule, world, k_a, k_b, seed=k_a * 10 + k_b) for rule in RULES.values()]
            print(row(f"{k_a} v {k_b}", rates))
        print("trained v base, eotd: " + ", ".join(
            f"{k} seeds {_claims(eotd_rule, world, k, 0, seed=k):.3f}" for k in (2, 3, 5)))
        print(f"{'found, 5 v 5':>12} " + " ".join(f"{'+' + str(g) + ' points':>16}" for g in (6, 12, 20)))
        for label, rule in (("eotd", eotd_rule), ("noise twice", double_count_rule)):
            print(row(label, [_claims(rule, world, 5, 5, gain=g / 100, seed=g) for g in (6, 12, 20)]))
        studies = [world.study(rng, 5, 5) for _ in range(STUDIES)]
        spread = np.std([a.accuracy - b.accuracy for a, b in studies])
        found = [components(list(pair)) for pair in studies[:200]]
        design = np.sqrt(np.mean([c.se(5, PROBLEMS) ** 2 for c in found]))
        twice = np.sqrt(np.mean([c.se(5, PROBLEMS) ** 2 + 2 * c.noise ** 2 / (5 * PROBLEMS) for c in found]))
        coverage = [np.mean([low <= world.accuracy <= high for low, high in
                             (mean_interval(world.study(rng, k, 1)[0]) for _ in range(STUDIES))]) for k in (3, 5)]
        print(f"SE of a 5 v 5 difference: simulated {spread:.4f}, design {design:.4f} (noise twice {twice:.4f}); "
              f"accuracy interval covers {coverage[0]:.3f} (3 seeds), {coverage[1]:.3f} (5 seeds)")


if __name__ == "__main__":
    main()
