"""eotd.stats: the test of the test. Simulated studies with training-seed effects check that "A beats B" keeps its
stated 5 % error rate for 2–5 seeds per side, against another trained method and against the untrained base, and finds
a real difference at a stated rate; rules that drop the problem term, count the seed x problem noise twice or stack
McNemar tests over seed pairs (the study's earlier rule) fail the same checks."""
from dataclasses import dataclass

import numpy as np
import pytest
from scipy import stats as st
from scipy.special import expit

from eotd.stats import Components, Runs, components, difference, holm, mean_interval, wilson_ci

PROBLEMS, STUDIES, ALPHA = 200, 1000, 0.05
# Monte-Carlo ceiling for a rate whose truth is ALPHA: one-sided 99 % (2.33 standard errors over 1000 studies).
CEILING = ALPHA + 2.33 * np.sqrt(ALPHA * (1 - ALPHA) / STUDIES)
SEEDS = [(2, 2), (3, 2), (3, 3), (4, 4), (5, 5), (2, 5), (3, 5)]


@dataclass(frozen=True)
class World:
    """Studies on PROBLEMS problems. A trained method's chance on a problem is expit(mean + difficulty + deviation +
    shift): the problem's difficulty ~ N(0, problem²) is shared by every method, the method's own deviation on it
    ~ N(0, pair²), its training seed's shift ~ N(0, seed²); each seed answers each problem once. The untrained base
    answers once (greedy) with a deviation of SD √(pair² + seed²), so every method's expected accuracy is the same
    unless A gets `gain` added to each chance."""

    mean: float
    problem: float
    pair: float
    seed: float

    def study(self, rng, k_a: int, k_b: int, gain: float = 0.0) -> tuple[Runs, Runs]:
        """A with k_a seeds against B with k_b seeds, or against the untrained base when k_b is 0."""
        difficulty = self.mean + rng.normal(0, self.problem, PROBLEMS)

        def trained(k: int, shift: float) -> Runs:
            chance = expit(difficulty + rng.normal(0, self.pair, PROBLEMS) + rng.normal(0, self.seed, (k, 1)))
            return Runs(rng.random((k, PROBLEMS)) < np.clip(chance + shift, 0, 1))

        if k_b == 0:
            chance = expit(difficulty + rng.normal(0, np.hypot(self.pair, self.seed), (1, PROBLEMS)))
            return trained(k_a, gain), Runs(rng.random((1, PROBLEMS)) < chance, trained=False)
        return trained(k_a, gain), trained(k_b, 0.0)

    @property
    def accuracy(self) -> float:
        """Every method's expected accuracy (no gain), by Gauss–Hermite quadrature."""
        x, w = np.polynomial.hermite_e.hermegauss(64)
        return float(w @ expit(self.mean + np.sqrt(self.problem ** 2 + self.pair ** 2 + self.seed ** 2) * x) / w.sum())


# Each world by what `components` measures in it (svamp in results/default: seed .026, noise .28, pair .15 at 15 %)
SVAMP = World(mean=-3.0, problem=2.0, pair=1.0, seed=0.4)  # 15 %, seed SD 2.6 points, noise .28, pair .15
NOISY = World(mean=-3.0, problem=2.0, pair=1.0, seed=0.7)  # seed SD 5 points
LOUD = World(mean=-3.0, problem=2.0, pair=1.0, seed=1.0)  # seed SD 7.5 points
QUIET = World(mean=-3.0, problem=2.0, pair=1.2, seed=0.15)  # seed SD 1 point; methods differ problem by problem: .18
FLOOR = World(mean=-3.6, problem=1.5, pair=1.0, seed=0.5)  # 8 %, seed SD 2.5 points
WORLDS = {"svamp": SVAMP, "noisy": NOISY, "loud": LOUD, "quiet": QUIET, "floor": FLOOR}


def _claims(rule, world: World, k_a: int, k_b: int, gain: float = 0.0, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    return float(np.mean([rule(*world.study(rng, k_a, k_b, gain)) for _ in range(STUDIES)]))


def eotd_rule(a: Runs, b: Runs) -> bool:
    return difference(a, b)["p_value"] < ALPHA


def seeds_only_rule(a: Runs, b: Runs) -> bool:
    """Welch's t on the per-seed accuracies: no problem term."""
    return bool(st.ttest_ind(a.flags.mean(axis=1), b.flags.mean(axis=1), equal_var=False).pvalue < ALPHA)


def double_count_rule(a: Runs, b: Runs) -> bool:
    """eotd's test with the seed x problem noise counted twice: the seed variances plus the whole variance over
    problems of the paired seed means (the same df)."""
    found = difference(a, b)
    se = np.sqrt(sum(r.flags.mean(axis=1).var(ddof=1) / r.seeds for r in (a, b)) +
                 np.var(a.flags.mean(axis=0) - b.flags.mean(axis=0), ddof=1) / a.problems)
    return bool(2 * st.t.sf(abs(found["diff"]) / se, found["df"]) < ALPHA)


def stacked_mcnemar_rule(a: Runs, b: Runs) -> bool:
    """The study's earlier rule: discordant problems summed over seed pairs (the shorter side repeated), one exact
    McNemar test on the sums, and every seed of the winner above every seed of the other."""
    k = max(a.seeds, b.seeds)
    left, right = a.flags[np.arange(k) % a.seeds] > 0, b.flags[np.arange(k) % b.seeds] > 0
    a_only, b_only = int((left & ~right).sum()), int((right & ~left).sum())
    p = st.binomtest(a_only, a_only + b_only).pvalue if a_only + b_only else 1.0
    acc_a, acc_b = a.flags.mean(axis=1), b.flags.mean(axis=1)
    return bool(p < ALPHA and (acc_a.min() > acc_b.max() or acc_b.min() > acc_a.max()))


@pytest.mark.parametrize("world", ["noisy", "loud", "quiet"])
@pytest.mark.parametrize("k_a,k_b", SEEDS)
def test_equal_methods_are_claimed_different_at_most_at_the_stated_rate(world, k_a, k_b):
    assert _claims(eotd_rule, WORLDS[world], k_a, k_b, seed=k_a * 10 + k_b) <= CEILING


@pytest.mark.parametrize("k", [2, 3, 5])
def test_a_trained_method_as_good_as_the_untrained_base_at_8_percent_is_rarely_said_to_beat_it(k):
    assert _claims(eotd_rule, FLOOR, k, 0, seed=k) <= CEILING


def test_methods_that_differ_problem_by_problem_fail_a_rule_without_the_problem_term():
    assert _claims(eotd_rule, QUIET, 5, 5, seed=55) <= CEILING  # 3.0 %
    assert _claims(seeds_only_rule, QUIET, 5, 5, seed=55) > CEILING  # 10.9 %


@pytest.mark.parametrize("k_a,k_b", [(2, 2), (3, 2)])
def test_the_stacked_mcnemar_rule_fails_the_same_check(k_a, k_b):
    assert _claims(stacked_mcnemar_rule, NOISY, k_a, k_b) > CEILING


def test_a_real_difference_is_found_at_the_stated_rate():
    # 12 points with 5 seeds a side: found in 73 % of studies at a seed SD of 5 points, 49 % at 7.5; 20 points: 98 %
    assert _claims(eotd_rule, NOISY, 5, 5, gain=0.12, seed=12) >= 0.65
    assert _claims(eotd_rule, LOUD, 5, 5, gain=0.12, seed=12) >= 0.40
    assert _claims(eotd_rule, NOISY, 5, 5, gain=0.20, seed=20) >= 0.95


def test_power_at_svamp_components_is_what_a_se_counting_the_noise_twice_loses():
    # 6 points with 5 seeds a side: found in 49 % of studies, 38 % with the noise counted twice
    assert _claims(eotd_rule, SVAMP, 5, 5, gain=0.06, seed=6) >= 0.45
    assert _claims(double_count_rule, SVAMP, 5, 5, gain=0.06, seed=6) < 0.45


@pytest.mark.parametrize("world", ["svamp", "quiet", "floor"])
def test_design_se_is_the_spread_of_simulated_differences(world):
    # the design's SE² averaged over studies (it estimates a variance) against the variance of the differences
    rng = np.random.default_rng(7)
    studies = [WORLDS[world].study(rng, 5, 5) for _ in range(STUDIES)]
    spread = np.std([a.accuracy - b.accuracy for a, b in studies])
    expected = np.sqrt(np.mean([components(list(pair)).se(5, PROBLEMS) ** 2 for pair in studies[:200]]))
    assert expected == pytest.approx(spread, rel=0.05)


@pytest.mark.parametrize("world", ["svamp", "floor"])
def test_accuracy_interval_covers_the_expected_accuracy(world):
    rng = np.random.default_rng(8)
    truth = WORLDS[world].accuracy
    intervals = [mean_interval(WORLDS[world].study(rng, 3, 1)[0]) for _ in range(STUDIES)]
    assert 0.93 <= np.mean([low <= truth <= high for low, high in intervals]) <= 0.99


def test_untrained_base_has_no_training_noise_and_single_seed_is_unmeasured():
    rng = np.random.default_rng(1)
    base = Runs(rng.random((1, PROBLEMS)) < 0.05, trained=False)
    trained = Runs(rng.random((3, PROBLEMS)) < 0.3)
    one = Runs(rng.random((1, PROBLEMS)) < 0.3)
    versus_base = difference(trained, base)
    assert versus_base["measured"] and versus_base["df"] > 2  # 3 seeds: the problem term's df counts too
    assert difference(Runs(trained.flags[:2]), base)["df"] == pytest.approx(1.0)  # 2 seeds: the seed term's alone
    assert versus_base["diff_low"] > 0 and versus_base["p_value"] < 0.05
    assert not difference(one, base)["measured"]


def test_seed_term_holds_the_seed_by_problem_noise_once():
    rng = np.random.default_rng(2)
    a, b = QUIET.study(rng, 4, 4)
    spread = np.var(a.flags.mean(axis=0) - b.flags.mean(axis=0), ddof=1)
    problem = spread - a.residual / 4 - b.residual / 4
    found = difference(a, b)
    se = (found["diff_high"] - found["diff"]) / st.t.ppf(0.975, found["df"])
    assert se ** 2 == pytest.approx((a.seed_variance + b.seed_variance) / 4 + problem / PROBLEMS)
    alike = Runs(np.tile(a.flags[:1], (3, 1)))  # seeds that score alike: the floor is the residual's share, here 0
    assert alike.residual == 0 and alike.seed_variance == 0
    assert a.seed_variance >= a.residual / PROBLEMS


def test_difference_interval_contains_the_difference_and_widens_with_seed_spread():
    rng = np.random.default_rng(2)
    a = rng.random((3, PROBLEMS)) < 0.3
    b = rng.random((3, PROBLEMS)) < 0.2
    tight = difference(Runs(a), Runs(b))
    spread = a.copy()
    spread[0, :40] = True  # one seed far better than the others
    wide = difference(Runs(spread), Runs(b))
    assert tight["diff_low"] < tight["diff"] < tight["diff_high"]
    assert wide["diff_high"] - wide["diff_low"] > tight["diff_high"] - tight["diff_low"]
    with pytest.raises(ValueError, match="different problems"):
        difference(Runs(a), Runs(b[:, :10]))


def test_mean_interval_is_wilson_for_one_run_and_wider_with_seeds():
    flags = np.zeros((1, 200))
    flags[0, :20] = 1
    assert mean_interval(Runs(flags)) == pytest.approx(wilson_ci(20, 200))
    seeds = np.zeros((3, 200))
    seeds[0, :10], seeds[1, :20], seeds[2, :30] = 1, 1, 1
    low, high = mean_interval(Runs(seeds))
    assert low < 0.10 < high and high - low > wilson_ci(20, 200)[1] - wilson_ci(20, 200)[0]


def test_holm_adjusts_in_step_down_order():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # never below an earlier step


@pytest.mark.parametrize("world,seed,noise,pair", [("svamp", 0.026, 0.28, 0.15), ("noisy", 0.05, 0.28, 0.15),
                                                   ("quiet", 0.011, 0.28, 0.18), ("floor", 0.025, 0.24, 0.11)])
def test_components_recover_the_simulated_worlds_and_size_a_design(world, seed, noise, pair):
    rng = np.random.default_rng(3)
    a, b = WORLDS[world].study(rng, 10, 10)
    found = components([a, b, Runs(rng.random((1, PROBLEMS)) < 0.1, trained=False)])
    assert found.seed == pytest.approx(seed, abs=0.015)
    assert (found.noise, found.pair) == pytest.approx((noise, pair), abs=0.03)
    assert found.detectable(5, 200) > found.half_width(5, 200)
    assert found.detectable(10, 200) < found.detectable(3, 200)
    assert components([Runs(rng.random((1, PROBLEMS)) < 0.1, trained=False)]) is None
    assert Components(seed=0.0, noise=0.0, pair=0.0).se(3, 200) == 0.0
