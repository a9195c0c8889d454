"""eotd.stats: the test of the test. Simulated studies with training-seed effects check that "A beats B" keeps its
stated 5 % error rate for 2–5 seeds per side and finds a real difference at a stated rate, and that the rule the
study used before (one exact McNemar test over stacked seed pairs) fails the same check."""
import numpy as np
import pytest
from scipy.stats import binomtest

from eotd.stats import Components, Runs, components, difference, holm, mean_interval, wilson_ci

PROBLEMS, STUDIES, SEED_SD, ALPHA = 200, 1000, 0.07, 0.05
# Monte-Carlo ceiling for a rate whose truth is ALPHA: one-sided 99 % (2.33 standard errors over 1000 studies).
CEILING = ALPHA + 2.33 * np.sqrt(ALPHA * (1 - ALPHA) / STUDIES)


def _study(rng, k_a: int, k_b: int, gain: float = 0.0) -> tuple[Runs, Runs]:
    """Two methods on the same problems of varying difficulty (chance of a right answer ~ Beta(1, 4), mean 20 %);
    every trained seed moves its student's chance by N(0, SEED_SD); A is `gain` better in truth."""
    chance = rng.beta(1, 4, PROBLEMS)

    def method(k: int, shift: float) -> Runs:
        p = np.clip(chance + shift + rng.normal(0, SEED_SD, (k, 1)), 0, 1)
        return Runs(rng.random((k, PROBLEMS)) < p)

    return method(k_a, gain), method(k_b, 0.0)


def _claims(rule, k_a: int, k_b: int, gain: float = 0.0, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    return float(np.mean([rule(*_study(rng, k_a, k_b, gain)) for _ in range(STUDIES)]))


def eotd_rule(a: Runs, b: Runs) -> bool:
    return difference(a, b)["p_value"] < ALPHA


def stacked_mcnemar_rule(a: Runs, b: Runs) -> bool:
    """The study's earlier rule: discordant problems summed over seed pairs (the shorter side repeated), one exact
    McNemar test on the sums, and every seed of the winner above every seed of the other."""
    k = max(a.seeds, b.seeds)
    left, right = a.flags[np.arange(k) % a.seeds] > 0, b.flags[np.arange(k) % b.seeds] > 0
    a_only, b_only = int((left & ~right).sum()), int((right & ~left).sum())
    p = binomtest(a_only, a_only + b_only).pvalue if a_only + b_only else 1.0
    acc_a, acc_b = a.flags.mean(axis=1), b.flags.mean(axis=1)
    return bool(p < ALPHA and (acc_a.min() > acc_b.max() or acc_b.min() > acc_a.max()))


@pytest.mark.parametrize("k_a,k_b", [(2, 2), (3, 2), (3, 3), (4, 4), (5, 5), (2, 5), (3, 5)])
def test_equal_methods_are_claimed_different_at_most_at_the_stated_rate(k_a, k_b):
    assert _claims(eotd_rule, k_a, k_b) <= CEILING


@pytest.mark.parametrize("k", [2, 3, 5])
def test_a_trained_method_as_good_as_the_untrained_base_is_rarely_said_to_beat_it(k):
    rng = np.random.default_rng(k)

    def study():
        chance = rng.beta(4, 8, PROBLEMS)  # away from 0, so a seed's shift averages out to none
        base = Runs(rng.random((1, PROBLEMS)) < chance, trained=False)
        return Runs(rng.random((k, PROBLEMS)) < np.clip(chance + rng.normal(0, SEED_SD, (k, 1)), 0, 1)), base

    assert np.mean([eotd_rule(*study()) for _ in range(STUDIES)]) <= CEILING


def test_a_real_difference_is_found_at_the_stated_rate():
    # 12 points with 5 seeds a side: found in over half of the studies (57 % at these settings), 20 points nearly always
    assert _claims(eotd_rule, 5, 5, gain=0.12) >= 0.45
    assert _claims(eotd_rule, 5, 5, gain=0.20) >= 0.85


@pytest.mark.parametrize("k_a,k_b", [(2, 2), (3, 2)])
def test_the_stacked_mcnemar_rule_fails_the_same_check(k_a, k_b):
    assert _claims(stacked_mcnemar_rule, k_a, k_b) > CEILING


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


def test_components_recover_the_simulated_seed_spread_and_size_a_design():
    rng = np.random.default_rng(3)
    a, b = _study(rng, 10, 10)
    found = components([a, b, Runs(rng.random((1, PROBLEMS)) < 0.1, trained=False)])
    assert 0.04 < found.seed < 0.10  # SEED_SD = 0.07 in truth
    assert found.detectable(5, 200) > found.half_width(5, 200)
    assert found.detectable(10, 200) < found.detectable(3, 200)
    assert components([Runs(rng.random((1, PROBLEMS)) < 0.1, trained=False)]) is None
    assert Components(seed=0.0, noise=0.0, pair=0.0).se(3, 200) == 0.0
