"""Accuracy intervals and method comparisons that treat training seeds as sampled, and the design helper.

A trained student is one draw of its training run: its data order (the seed) moves a 135M student's accuracy by
several points. So one method's result is a k-seeds x n-problems table of right/wrong, and three sources of chance
enter every figure: which seeds were drawn, which problems, and each seed's luck on each problem (seed x problem).

Choice of test (checked by simulation in tests/test_stats.py): a Welch-type t on the seeds, made paired on problems.
With seed effects u, the methods' difference δ on a problem and the seed x problem residual e (each seed's luck on
each problem), A - B on the same n problems with k_A and k_B seeds has

    Var = σ_uA²/k_A + σ_uB²/k_B + σ_δ²/n + σ_eA²/(k_A n) + σ_eB²/(k_B n).

Two-way ANOVA of a method's k x n table estimates its components: the residual mean square r (unbiased for σ_e²)
and the variance s² of the per-seed accuracies (for σ_u² + σ_e²/n); the variance over problems of the paired seed
means p_A,q - p_B,q estimates σ_δ² + σ_eA²/k_A + σ_eB²/k_B. Each component is floored at 0, so

    SE² = S_A/k_A + S_B/k_B + max(0, var_q(p_A,q - p_B,q) - r_A/k_A - r_B/k_B)/n,   S = max(s², r/n).

The seed terms carry the seed x problem noise once; the problem term only what the paired problems add (shared
difficulty cancels). The floor S ≥ r/n keeps a side with 2 or 3 seeds that happen to score alike from a near-zero
seed term. Only a trained side with 2+ seeds has r; the untrained base (greedy, one run) has no residual of its own.
Degrees of freedom: Welch–Satterthwaite over the mean squares (k - 1 for a seed term, n - 1 for the variance over
problems, (k - 1)(n - 1) for r) when every trained side has 3+ seeds; when a side has 2 seeds its variance rests on
one degree of freedom and Satterthwaite turns liberal, so then only the seed terms count. The untrained base has no
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
    def residual(self) -> float:
        """The seed x problem residual mean square (two-way ANOVA without replication): how much one problem's
        right/wrong moves from seed to seed beyond its seed's level; 0 with one seed or one problem."""
        k, n = self.flags.shape
        if k < 2 or n < 2:
            return 0.0
        resid = self.flags - self.flags.mean(axis=1, keepdims=True) - self.flags.mean(axis=0, keepdims=True) + \
            self.flags.mean()
        return float((resid ** 2).sum() / ((k - 1) * (n - 1)))

    @property
    def seed_variance(self) -> float | None:
        """The variance of a seed's accuracy: 0 for the untrained base, None (unknown) for one trained seed, else the
        variance of the per-seed accuracies, never below residual/n, which each seed's luck on its n problems alone
        gives (the two-way ANOVA's seed component floored at 0)."""
        if not self.trained:
            return 0.0
        if self.seeds < 2:
            return None
        return max(float(self.flags.mean(axis=1).var(ddof=1)), self.residual / self.problems)


def wilson_ci(correct: float, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Wilson score interval for correct/n; (nan, nan) when n is 0. Unlike a bootstrap it does not collapse to
    [0, 0] at 0/n: 0/200 still allows up to 1.9 %."""
    if n == 0:
        return (float("nan"), float("nan"))
    ci = binomtest(int(round(correct)), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return (float(ci.low), float(ci.high))


def _problem_terms(spread: float, n: int, residuals: list[tuple[float, int]]) -> list[tuple[float, float]]:
    """The problem term of SE² as Satterthwaite terms (value, df): `spread` (the variance over problems of the seed
    means, or of their paired difference) / n, less each residual mean square r / (k n) of a side with k seeds (see
    the module docstring); no terms when they sum to 0 or less."""
    terms = [(spread / n, n - 1)] + [(-r / (k * n), (k - 1) * (n - 1)) for r, k in residuals]
    return terms if sum(v for v, _ in terms) > 0 else []


def _residuals(*sides: Runs) -> list[tuple[float, int]]:
    """(residual, seeds) of each trained side with 2+ seeds: the seed x problem noise its seed term already holds."""
    return [(r.residual, r.seeds) for r in sides if r.trained and r.seeds > 1]


def _df(seed_terms: list[tuple[float, int]], problem_terms: list[tuple[float, float]], n: int) -> float:
    """Degrees of freedom for SE² = Σ seed terms (variance/k, k) + Σ problem terms (value, df) (see the module
    docstring). Seeds that happen to score alike (variance 0) still count: then the fewest seeds' k - 1."""
    seeds = [(v, k) for v, k in seed_terms if k > 1]
    if not seeds:
        return float(n - 1)
    fewest = min(k for _, k in seeds)
    if not any(v > 0 for v, _ in seeds):
        return float(fewest - 1)
    terms = [(v, k - 1) for v, k in seeds if v > 0] + (problem_terms if fewest >= 3 else [])
    return sum(v for v, _ in terms) ** 2 / sum(v ** 2 / df for v, df in terms)


def mean_interval(runs: Runs, level: float = LEVEL) -> tuple[float, float]:
    """95 % interval of a method's accuracy. Several seeds: mean ± t·SE with SE² = S/k + max(0, var_q(seed-mean
    correctness) - r/k)/n (S and r as in the module docstring: the seed term holds the seed x problem noise once) and
    the df of `difference`, never narrower than the Wilson interval of the seed mean over the n problems (so seeds
    that all score 0/n keep an honest upper bound); one run: Wilson."""
    wilson = wilson_ci(runs.flags.sum() / runs.seeds, runs.problems)
    if runs.seeds < 2 or not runs.trained or runs.problems < 2:
        return wilson
    seed_term = runs.seed_variance / runs.seeds
    problem = _problem_terms(runs.flags.mean(axis=0).var(ddof=1), runs.problems, _residuals(runs))
    df = _df([(seed_term, runs.seeds)], problem, runs.problems)
    half = st.t.ppf(0.5 + level / 2, df) * np.sqrt(seed_term + sum(v for v, _ in problem))
    return (max(0.0, min(runs.accuracy - half, wilson[0])), min(1.0, max(runs.accuracy + half, wilson[1])))


def difference(a: Runs, b: Runs, level: float = LEVEL) -> dict:
    """A - B on the same problems: diff, its interval (diff_low, diff_high), df and a two-sided p-value (see the
    module docstring). `measured` says whether both sides' training noise is known (no single trained seed). Fewer
    than two problems tell nothing: p = 1 and the interval is every possible difference."""
    if a.problems != b.problems:
        raise ValueError(f"the two methods were scored on different problems ({a.problems} vs {b.problems})")
    diff = a.accuracy - b.accuracy
    variances = (a.seed_variance, b.seed_variance)
    measured = None not in variances
    if a.problems < 2:
        return {"diff": diff, "diff_low": -1.0, "diff_high": 1.0, "df": float("nan"), "p_value": 1.0,
                "measured": measured}
    seed_terms = [((s or 0.0) / r.seeds, r.seeds) for r, s in zip((a, b), variances)]
    spread = (a.flags.mean(axis=0) - b.flags.mean(axis=0)).var(ddof=1)
    problem = _problem_terms(spread, a.problems, _residuals(a, b))
    se = np.sqrt(sum(v for v, _ in seed_terms + problem))
    df = _df(seed_terms, problem, a.problems)
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

    def _terms(self, k: int, n: int) -> tuple[list[tuple[float, int]], list[tuple[float, float]]]:
        """The expected seed terms (one per side) and problem terms of `difference`'s SE² for k seeds a side and n
        problems: a seed's accuracy varies by seed² + noise²/n, the paired seed means by pair² + 2·noise²/k, and
        each side's residual is noise²."""
        seed = (self.seed ** 2 + self.noise ** 2 / n) / k
        problem = _problem_terms(self.pair ** 2 + 2 * self.noise ** 2 / k, n, [(self.noise ** 2, k)] * 2)
        return [(seed, k), (seed, k)], problem

    def se(self, k: int, n: int) -> float:
        """Standard error of the difference of two trained methods, k seeds each, on n shared problems."""
        seeds, problem = self._terms(k, n)
        return float(np.sqrt(sum(v for v, _ in seeds + problem)))

    def _df(self, k: int, n: int) -> float:
        return _df(*self._terms(k, n), n)

    def half_width(self, k: int, n: int, level: float = LEVEL) -> float:
        """Expected half-width of that difference's interval, with the degrees of freedom `difference` uses."""
        return float(st.t.ppf(0.5 + level / 2, self._df(k, n)) * self.se(k, n))

    def detectable(self, k: int, n: int, level: float = LEVEL, power: float = POWER) -> float:
        """The smallest true difference found with `power` at two-sided `level` (k seeds per side, n problems)."""
        df = self._df(k, n)
        return float((st.t.ppf(0.5 + level / 2, df) + st.t.ppf(power, df)) * self.se(k, n))


def components(methods: list[Runs]) -> Components | None:
    """Variance components pooled over the trained methods with 2+ seeds on one set (all on the same problems);
    None when no such method exists. `pair` comes from every two of them."""
    multi = [r for r in methods if r.trained and r.seeds > 1 and r.problems > 1]
    if not multi:
        return None
    seed = float(np.mean([r.seed_variance - r.residual / r.problems for r in multi]))
    noise = float(np.mean([r.residual for r in multi]))
    pairs = [np.var(a.flags.mean(axis=0) - b.flags.mean(axis=0), ddof=1) - noise * (1 / a.seeds + 1 / b.seeds)
             for i, a in enumerate(multi) for b in multi[i + 1:]]
    if not pairs:  # one method: no pairing measured, so twice its between-problem variance (no correlation assumed)
        only = multi[0]
        pairs = [2 * (only.flags.mean(axis=0).var(ddof=1) - noise / only.seeds)]
    pair = max(0.0, float(np.mean(pairs)))
    return Components(seed=float(np.sqrt(seed)), noise=float(np.sqrt(noise)), pair=float(np.sqrt(pair)))
