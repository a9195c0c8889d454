"""Throughput of eotd.verify_many on GSM8K-sized PoT programs and EoT systems (target: 200 and 100 per second)."""
import os
import random
import time

from eotd import verify_many
from eotd.sandbox import shared_sandbox


def pot_program(rng: random.Random) -> tuple[str, int]:
    a, b, c, d = (rng.randint(2, 60) for _ in range(4))
    source = (
        f"eggs_per_day = {a}\neaten = {b % a}\nbaked = {c % (a - b % a + 1)}\nprice = {d}\n"
        "remaining = eggs_per_day - eaten - baked\nans = remaining * price\n"
    )
    return source, (a - b % a - c % (a - b % a + 1)) * d


def eot_system(rng: random.Random) -> tuple[str, int]:
    meals, ratio, extra = rng.randint(2, 40), rng.randint(2, 9), rng.randint(1, 30)
    source = (
        "% Assume Angela delivers x meals:\nmeals = x\n"
        f"% She delivers {ratio} times as many packages as meals:\npackages = {ratio} * meals\n"
        f"% She also delivers {extra} letters:\nletters = {extra}\n"
        f"% In total she delivers {meals * (ratio + 1) + extra} items:\n"
        f"packages + meals + letters = {meals * (ratio + 1) + extra}\n"
        "% How many meals does she deliver? The answer is meals:\nans = meals\n"
    )
    return source, meals


def measure(kind: str, items: list) -> float:
    start = time.perf_counter()
    verdicts = verify_many(items)
    elapsed = time.perf_counter() - start
    assert all(v.correct for v in verdicts), [v for v in verdicts if not v.correct][:3]
    rate = len(items) / elapsed
    print(f"{kind}: {len(items)} verified in {elapsed:.2f} s = {rate:.0f}/s")
    return rate


def main() -> None:
    rng = random.Random(0)
    pots = [("pot", *pot_program(rng)) for _ in range(2000)]
    eots = [("eot", *eot_system(rng)) for _ in range(600)]
    sandbox = shared_sandbox()
    sandbox.run([])  # start the workers before timing
    verify_many(pots[:20] + eots[:20])
    print(f"sandbox workers: {sandbox.size} on {os.cpu_count()} cores")
    measure("PoT programs", pots)
    measure("EoT systems", eots)


if __name__ == "__main__":
    main()
