"""Throughput of ``eotd.equations.solve_eot`` on ~300 GSM8K-sized EoT systems (3-6 equations), one core.

Run: ``.venv/bin/python tests/benchmarks/bench_equations.py [--n 300] [--repeat 3]``. Not collected by pytest.
Every timed system is fresh (sympy caches results) and its answer is checked against the generator's.
"""
from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from fractions import Fraction

from eotd.answers import numbers_equal
from eotd.equations import solve_eot

HEADER = "System of linear equations: (Do not simplify)\n\n"


def _angela(rng: random.Random):
    meals, ratio = rng.randint(2, 40), rng.randint(2, 12)
    total = meals * (ratio + 1)
    text = (
        f"% Assume Angela delivers x meals:\nmeals = x\n"
        f"% She needs to deliver {ratio} times as many packages as meals:\npackages = {ratio} * meals\n"
        f"% She needs to deliver {total} meals and packages combined:\npackages + meals = {total}\n"
        f"% How many meals does she deliver? The answer is meals:\nans = meals"
    )
    return text, meals


def _dallas(rng: random.Random):
    darcy, k, years = rng.randint(3, 30), rng.randint(2, 4), rng.randint(1, 5)
    dallas = k * (darcy - years) + years
    later = rng.randint(1, 5)
    text = (
        f"% Assume Dallas is x years old now:\ndallas = x\n% Darcy is y years old now:\ndarcy = y\n"
        f"dallas - {years} = {k} * (darcy - {years})\n"
        f"darcy = {darcy}\n"
        f"dallas_later = dallas + {later}\n"
        f"ans = dallas_later"
    )
    return text, dallas + later


def _chain(rng: random.Random):
    n = rng.randint(3, 6)
    value = Fraction(rng.randint(1, 200))
    lines = [f"v0 = {value}"]
    for i in range(1, n - 1):
        op = rng.choice(["+", "-", "*", "/"])
        c = rng.randint(2, 9)
        lines.append(f"v{i} = v{i - 1} {op} {c}")
        value = {"+": value + c, "-": value - c, "*": value * c, "/": value / c}[op]
    lines.append(f"ans = v{n - 2}")
    return "\n".join(lines), value


def _shopping(rng: random.Random):
    price, count, tip = rng.randint(2, 50), rng.randint(2, 12), rng.choice([10, 15, 20])
    paid = rng.choice([100, 200, 500, 1000])
    decimal = rng.choice(["0.5", "1.25", "2.75", "0"])
    subtotal = price * count + Fraction(decimal)
    total = subtotal * (1 + Fraction(tip, 100))
    text = (
        f"% Each shirt costs ${price}:\nshirt_price = {price}\n"
        f"num_shirts = {count}\n"
        f"subtotal = shirt_price * num_shirts + {decimal}\n"
        f"total = subtotal + {tip}% * subtotal\n"
        f"change = {paid} - total\n"
        f"ans = change"
    )
    return text, paid - total


def _rate(rng: random.Random):
    per_hour, hours, days = rng.randint(5, 40), rng.randint(2, 10), rng.randint(2, 7)
    total = per_hour * hours * days
    text = (
        f"% Assume she earns x dollars per hour:\nwage = x\n"
        f"hours_per_day = {hours}\ndays = {days}\n"
        f"total_earned = {total}\n"
        f"total_earned = wage * hours_per_day * days\n"
        f"ans = wage"
    )
    return text, per_hour


def _split(rng: random.Random):
    a, b, c = rng.randint(1, 50), rng.randint(1, 50), rng.randint(1, 50)
    text = (
        f"% Assume the first has x, the second y, the third z:\nfirst = x\nsecond = y\nthird = z\n"
        f"first + second + third = {a + b + c}\n"
        f"second = first + {b - a}\n"
        f"third - second = {c - b}\n"
        f"ans = third"
    )
    return text, c


def _ratio_div(rng: random.Random):
    boxes, per_box = rng.randint(2, 20), rng.randint(2, 30)
    total = boxes * per_box
    text = (
        f"total_pencils = {total}\nboxes = x\n"
        f"pencils_per_box = total_pencils / boxes\n"
        f"pencils_per_box = {per_box}\n"
        f"ans = boxes"
    )
    return text, boxes


GENERATORS = [_angela, _dallas, _chain, _shopping, _rate, _split, _ratio_div]


def make_systems(n: int, seed: int = 0) -> list[tuple[str, object]]:
    rng = random.Random(seed)
    systems = []
    for i in range(n):
        text, expected = GENERATORS[i % len(GENERATORS)](rng)
        systems.append((HEADER + text, expected))
    return systems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for text, _expected in make_systems(50, seed=12345):  # warm-up: lazy imports, first-call costs
        solve_eot(text)

    # Timed on systems never seen before (sympy caches results, so re-solving the same texts is faster).
    times = []
    for run in range(args.repeat):
        systems = make_systems(args.n, seed=run)
        wrong = []
        reasons = Counter()
        start = time.perf_counter()
        results = [solve_eot(text) for text, _expected in systems]
        times.append(time.perf_counter() - start)
        for (text, expected), result in zip(systems, results):
            reasons[result.reason] += 1
            if result.reason != "ok" or not numbers_equal(result.answer, expected):
                wrong.append((text, expected, result))
        print(f"run {run}: {len(systems)} systems, {len(systems) / times[-1]:.0f} systems/s, "
              f"reasons {dict(reasons)}, wrong {len(wrong)}")
        for text, expected, result in wrong[:3]:
            print("WRONG", expected, result, "\n" + text)
    total = args.n * args.repeat
    print(f"solve_eot: {total / sum(times):.0f} systems/s on one core ({total} fresh systems)")

    per_kind = {}
    for gen in GENERATORS:
        texts = [HEADER + gen(random.Random(1000 + k))[0] for k in range(40)]
        start = time.perf_counter()
        for text in texts:
            solve_eot(text)
        per_kind[gen.__name__.lstrip("_")] = len(texts) / (time.perf_counter() - start)
    print("per kind (systems/s): " + ", ".join(f"{k} {v:.0f}" for k, v in per_kind.items()))


if __name__ == "__main__":
    main()
