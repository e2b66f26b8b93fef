"""The statistics module against independent references: GrowthBook's published
figures, scipy, and Monte Carlo draws from the same posteriors."""

import numpy as np
import pytest
from scipy import stats

from core.statistics import (
    Arm,
    chance_to_be_best,
    chance_to_beat,
    expected_loss,
    floored_weights,
    frequentist,
    relative_lift_credible_interval,
    sample_ratio_mismatch,
)


def test_chance_to_beat_control_49_vs_51_of_100_is_about_061():
    # GrowthBook's normal approximation gives 0.609; the exact Beta answer is 0.6108.
    assert chance_to_beat(Arm(100, 49), Arm(100, 51)) == pytest.approx(0.61077, abs=1e-5)


def test_chance_to_beat_agrees_with_monte_carlo_draws_from_the_posteriors():
    rng = np.random.default_rng(7)
    control, treatment = Arm(1200, 130), Arm(1180, 151)
    draws = 400_000
    mc = (rng.beta(treatment.alpha, treatment.beta, draws) > rng.beta(control.alpha, control.beta, draws)).mean()
    assert chance_to_beat(control, treatment) == pytest.approx(mc, abs=0.004)


def test_chance_to_be_best_sums_to_one_and_matches_pairwise_closed_form():
    arms = [Arm(100, 49), Arm(100, 51)]
    best = chance_to_be_best(arms)
    assert sum(best) == pytest.approx(1.0, abs=1e-12)
    assert best[1] == pytest.approx(chance_to_beat(*arms), abs=1e-5)


def test_chance_to_be_best_of_three_arms_matches_monte_carlo():
    rng = np.random.default_rng(11)
    arms = [Arm(500, 50), Arm(500, 60), Arm(500, 58)]
    draws = np.array([rng.beta(a.alpha, a.beta, 300_000) for a in arms])
    mc = np.bincount(draws.argmax(axis=0), minlength=3) / draws.shape[1]
    assert chance_to_be_best(arms) == pytest.approx(list(mc), abs=0.004)


def test_expected_loss_matches_monte_carlo():
    rng = np.random.default_rng(3)
    arms = [Arm(100, 49), Arm(100, 51)]
    draws = np.array([rng.beta(a.alpha, a.beta, 400_000) for a in arms])
    mc = [(draws.max(axis=0) - draws[i]).mean() for i in range(2)]
    assert expected_loss(arms) == pytest.approx(mc, abs=5e-4)


def test_relative_lift_and_sequential_interval_match_growthbook_reference():
    result = frequentist(Arm(3000, 1396), Arm(3461, 2422))
    assert result.relative_lift == pytest.approx(0.504, abs=5e-4)
    assert result.sequential_low == pytest.approx(0.401, abs=5e-4)
    assert result.sequential_high == pytest.approx(0.607, abs=5e-4)
    # The always-valid interval is wider than the fixed-horizon one.
    assert result.sequential_low < result.ci_low < result.relative_lift < result.ci_high < result.sequential_high


def test_two_proportion_p_value_matches_scipy_chi_square_without_correction():
    control, treatment = Arm(1000, 100), Arm(1000, 125)
    table = [[100, 900], [125, 875]]
    expected = stats.chi2_contingency(table, correction=False).pvalue
    assert frequentist(control, treatment).p_value == pytest.approx(expected, rel=1e-9)


def test_sequential_p_value_is_at_least_the_fixed_horizon_p_value():
    result = frequentist(Arm(1000, 100), Arm(1000, 125))
    assert result.p_value < result.sequential_p_value < 1
    # At that alpha the sequence's edge touches zero.
    from core.statistics import _lift_variance, sequential_half_width

    half = sequential_half_width(
        variance=_lift_variance(Arm(1000, 100), Arm(1000, 125)), total=2000, alpha=result.sequential_p_value
    )
    assert half == pytest.approx(abs(result.relative_lift), rel=1e-6)


def test_credible_interval_of_lift_contains_monte_carlo_quantiles():
    rng = np.random.default_rng(5)
    control, treatment = Arm(3000, 1396), Arm(3461, 2422)
    ratio = rng.beta(treatment.alpha, treatment.beta, 400_000) / rng.beta(control.alpha, control.beta, 400_000) - 1
    low, high = relative_lift_credible_interval(control, treatment)
    assert low == pytest.approx(np.quantile(ratio, 0.025), abs=0.003)
    assert high == pytest.approx(np.quantile(ratio, 0.975), abs=0.003)


def test_srm_p_value_equals_scipy_chisquare_and_flags_below_0001():
    exposures, weights = [5100, 4900], [0.5, 0.5]
    result = sample_ratio_mismatch(exposures, weights)
    assert result.p_value == pytest.approx(stats.chisquare(exposures, f_exp=[5000, 5000]).pvalue, rel=1e-12)
    assert result.p_value == pytest.approx(0.0455, abs=1e-4)  # chi2 = 4
    assert result.flagged is False

    skewed = sample_ratio_mismatch([5200, 4800], [0.5, 0.5])
    assert skewed.p_value == pytest.approx(stats.chisquare([5200, 4800], f_exp=[5000, 5000]).pvalue, rel=1e-12)
    assert skewed.p_value == pytest.approx(6.334e-5, rel=1e-3)  # chi2 = 16
    assert skewed.flagged is True

    weighted = sample_ratio_mismatch([7000, 3000], [0.7, 0.3])
    assert weighted.p_value == pytest.approx(1.0)


def test_srm_p_value_equals_scipy_for_many_random_counts():
    rng = np.random.default_rng(2)
    for _ in range(200):
        arms = int(rng.integers(2, 6))
        weights = list(rng.dirichlet(np.ones(arms)))
        exposures = [int(x) for x in rng.integers(1, 5000, arms)]
        expected = np.array(weights) * sum(exposures)
        reference = stats.chisquare(exposures, f_exp=expected).pvalue
        assert sample_ratio_mismatch(exposures, weights).p_value == pytest.approx(reference, rel=1e-9, abs=1e-300)


def test_srm_not_flagged_until_every_arm_has_eight_exposures():
    result = sample_ratio_mismatch([40, 7], [0.5, 0.5])
    assert result.p_value < 0.001
    assert result.flagged is False


def test_floored_weights_pin_small_arms_and_keep_proportions():
    assert floored_weights([0.9, 0.08, 0.02], 0.05) == pytest.approx([0.95 * 0.9 / 0.98, 0.95 * 0.08 / 0.98, 0.05])
    assert floored_weights([0.5, 0.5], 0.1) == [0.5, 0.5]
    with pytest.raises(ValueError):
        floored_weights([0.3, 0.3, 0.4], 0.4)


def test_frequentist_is_undefined_without_control_conversions():
    assert frequentist(Arm(100, 0), Arm(100, 5)) is None
    assert frequentist(Arm(0, 0), Arm(100, 5)) is None
