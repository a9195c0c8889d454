"""Accuracy intervals and method comparisons that treat training seeds as sampled, and the design helper.

A trained student is one draw of its training run: its data order (the seed) moves a 135M student's accuracy by
several points. So one method's result is a k-seeds x n-problems table of right/wrong, and two sources of chance
enter every figure: which seeds were drawn, and which problems.

Choice of test (checked by simulation in tests/test_stats.py): a Welch-type t on the seeds, made paired on problems.
For A - B on the same n problems, with s² the variance of a method's per-seed accuracies and k its seeds,

    SE² = s_A²/k_A + s_B²/k_B + var_q(p_A,q - p_B,q)/n,

where p_M,q is method M's mean correctness on problem q over its seeds. The seed terms carry training noise; the
problem term carries which problems were drawn (paired, so shared difficulty cancels). Degrees of freedom:
Welch–Satterthwaite over all three terms (k - 1 for a seed term, n - 1 for the problem term) when every trained side
has 3+ seeds; when a side has 2 seeds its variance rests on one degree of freedom, Satterthwaite turns liberal (7.6 %
false claims at 2 vs 2 in the simulation, stated 5 %), so then only the seed terms count. The untrained base has no
training noise; a single-seed method's is unknown and it is reported as "ahead on one training seed", never "beats";
with no seed term at all the test is a paired t on problems with n - 1 df.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as st
from scipy.stats import binomtest

LEVEL = 0.95
POWER = 0.80


@dataclass(frozen=True)
class Runs:
    """One method on one set: `flags` is seeds x problems (1 = right), problems in the same order for every method
    compared; `trained` is False for the untrained base (one run, no training noise)."""

    flags: np.ndarray
    trained: bool = True
    ids: tuple = ()  # the problems' ids, in the columns' order (optional)

    def __post_init__(self):
        object.__setattr__(self, "flags", np.atleast_2d(np.asarray(self.flags, dtype=float)))

    def on(self, ids) -> "Runs":
        """The same runs restricted to the problems `ids` (in that order), so two methods pair problem by problem."""
        where = {q: i for i, q in enumerate(self.ids)}
        return Runs(self.flags[:, [where[q] for q in ids]], self.trained, tuple(ids))

    @property
    def seeds(self) -> int:
        return self.flags.shape[0]

    @property
    def problems(self) -> int:
        return self.flags.shape[1]

    @property
    def accuracy(self) -> float:
        return float(self.flags.mean())

    @property
    def seed_variance(self) -> float | None:
        """The variance of per-seed accuracies: 0 for the untrained base, None (unknown) for one trained seed."""
        if not self.trained:
            return 0.0
        return float(self.flags.mean(axis=1).var(ddof=1)) if self.seeds > 1 else None


def wilson_ci(correct: float, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Wilson score interval for correct/n; (nan, nan) when n is 0. Unlike a bootstrap it does not collapse to
    [0, 0] at 0/n: 0/200 still allows up to 1.9 %."""
    if n == 0:
        return (float("nan"), float("nan"))
    ci = binomtest(int(round(correct)), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return (float(ci.low), float(ci.high))


def _df(seed_terms: list[tuple[float, int]], problem_term: float, n: int) -> float:
    """Degrees of freedom for SE² = Σ seed terms (variance/k, k) + problem term (see the module docstring). Seeds
    that happen to score alike (variance 0) still count: then the fewest seeds' k - 1."""
    seeds = [(v, k) for v, k in seed_terms if k > 1]
    if not seeds:
        return float(n - 1)
    fewest = min(k for _, k in seeds)
    if not any(v > 0 for v, _ in seeds):
        return float(fewest - 1)
    terms = [(v, k - 1) for v, k in seeds if v > 0] + ([(problem_term, n - 1)] if fewest >= 3 and problem_term > 0
                                                       else [])
    return sum(v for v, _ in terms) ** 2 / sum(v ** 2 / df for v, df in terms)


def mean_interval(runs: Runs, level: float = LEVEL) -> tuple[float, float]:
    """95 % interval of a method's accuracy. Several seeds: mean ± t·SE with SE² = var(per-seed accuracy)/k +
    var_q(seed-mean correctness)/n and the df of `difference`, never narrower than the Wilson interval of the seed
    mean over the n problems (so seeds that all score 0/n keep an honest upper bound); one run: Wilson."""
    wilson = wilson_ci(runs.flags.sum() / runs.seeds, runs.problems)
    if runs.seeds < 2 or not runs.trained or runs.problems < 2:
        return wilson
    seed_term = runs.seed_variance / runs.seeds
    spread = runs.flags.mean(axis=0).var(ddof=1) / runs.problems
    df = _df([(seed_term, runs.seeds)], spread, runs.problems)
    half = st.t.ppf(0.5 + level / 2, df) * np.sqrt(seed_term + spread)
    return (max(0.0, min(runs.accuracy - half, wilson[0])), min(1.0, max(runs.accuracy + half, wilson[1])))


def difference(a: Runs, b: Runs, level: float = LEVEL) -> dict:
    """A - B on the same problems: diff, its interval (diff_low, diff_high), df and a two-sided p-value (see the
    module docstring). `measured` says whether both sides' training noise is known (no single trained seed). Fewer
    than two problems tell nothing: p = 1 and the interval is every possible difference."""
    if a.problems != b.problems:
        raise ValueError(f"the two methods were scored on different problems ({a.problems} vs {b.problems})")
    diff = a.accuracy - b.accuracy
    measured = a.seed_variance is not None and b.seed_variance is not None
    if a.problems < 2:
        return {"diff": diff, "diff_low": -1.0, "diff_high": 1.0, "df": float("nan"), "p_value": 1.0,
                "measured": measured}
    seed_terms = [((s or 0.0) / r.seeds, r.seeds) for r, s in ((a, a.seed_variance), (b, b.seed_variance))]
    problem_term = (a.flags.mean(axis=0) - b.flags.mean(axis=0)).var(ddof=1) / a.problems
    se = np.sqrt(sum(v for v, _ in seed_terms) + problem_term)
    df = _df(seed_terms, problem_term, a.problems)
    if se == 0:
        p_value, half = (1.0 if diff == 0 else 0.0), 0.0
    else:
        p_value = float(2 * st.t.sf(abs(diff) / se, df))
        half = float(st.t.ppf(0.5 + level / 2, df) * se)
    return {"diff": diff, "diff_low": max(-1.0, diff - half), "diff_high": min(1.0, diff + half), "df": float(df),
            "p_value": p_value, "measured": measured}


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values (same order as given)."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p)
    adjusted = np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order])
    out = np.empty_like(p)
    out[order] = np.minimum(adjusted, 1.0)
    return out


@dataclass(frozen=True)
class Components:
    """Standard deviations (fractions) of what moves a comparison of two trained methods: `seed`, a method's accuracy
    from one training seed to the next; `noise`, one problem's right/wrong from seed to seed (seed x problem);
    `pair`, how much two methods differ problem by problem beyond that noise."""

    seed: float
    noise: float
    pair: float

    def _terms(self, k: int, n: int) -> tuple[list[tuple[float, int]], float]:
        """The expected seed terms (one per side) and problem term of `difference`'s SE² for k seeds a side and n
        problems: a seed's accuracy varies by seed² + noise²/n, a problem's seed mean by pair² + 2·noise²/k."""
        seed = (self.seed ** 2 + self.noise ** 2 / n) / k
        return [(seed, k), (seed, k)], (self.pair ** 2 + 2 * self.noise ** 2 / k) / n

    def se(self, k: int, n: int) -> float:
        """Standard error of the difference of two trained methods, k seeds each, on n shared problems."""
        seeds, problems = self._terms(k, n)
        return float(np.sqrt(sum(v for v, _ in seeds) + problems))

    def _df(self, k: int, n: int) -> float:
        return _df(*self._terms(k, n), n)

    def half_width(self, k: int, n: int, level: float = LEVEL) -> float:
        """Expected half-width of that difference's interval, with the degrees of freedom `difference` uses."""
        return float(st.t.ppf(0.5 + level / 2, self._df(k, n)) * self.se(k, n))

    def detectable(self, k: int, n: int, level: float = LEVEL, power: float = POWER) -> float:
        """The smallest true difference found with `power` at two-sided `level` (k seeds per side, n problems)."""
        df = self._df(k, n)
        return float((st.t.ppf(0.5 + level / 2, df) + st.t.ppf(power, df)) * self.se(k, n))


def _anova(flags: np.ndarray) -> tuple[float, float]:
    """(seed variance, residual variance) of a seeds x problems table by two-way ANOVA without replication."""
    k, n = flags.shape
    resid = flags - flags.mean(axis=1, keepdims=True) - flags.mean(axis=0, keepdims=True) + flags.mean()
    ms_resid = float((resid ** 2).sum() / ((k - 1) * (n - 1)))
    ms_seed = float(n * flags.mean(axis=1).var(ddof=1))
    return max(0.0, (ms_seed - ms_resid) / n), ms_resid


def components(methods: list[Runs]) -> Components | None:
    """Variance components pooled over the trained methods with 2+ seeds on one set (all on the same problems);
    None when no such method exists. `pair` comes from every two of them."""
    multi = [r for r in methods if r.trained and r.seeds > 1 and r.problems > 1]
    if not multi:
        return None
    seed, noise = (float(np.mean(v)) for v in zip(*(_anova(r.flags) for r in multi)))
    pairs = [np.var(a.flags.mean(axis=0) - b.flags.mean(axis=0), ddof=1) - noise * (1 / a.seeds + 1 / b.seeds)
             for i, a in enumerate(multi) for b in multi[i + 1:]]
    if not pairs:  # one method: no pairing measured, so twice its between-problem variance (no correlation assumed)
        only = multi[0]
        pairs = [2 * (only.flags.mean(axis=0).var(ddof=1) - noise / only.seeds)]
    pair = max(0.0, float(np.mean(pairs)))
    return Components(seed=float(np.sqrt(seed)), noise=float(np.sqrt(noise)), pair=float(np.sqrt(pair)))
