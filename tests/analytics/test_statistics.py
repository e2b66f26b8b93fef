"""The statistics module against independent references: GrowthBook's and PostHog's
published figures, scipy, and Monte Carlo draws from the same posteriors.

Sources of the published cases (each test names its own):
- gbstats: github.com/growthbook/growthbook, packages/stats/tests/frequentist/test_tests.py
  (TestTwoSidedTTest, TestSequentialTTest).
- PostHog: github.com/PostHog/posthog, products/experiments/stats/tests/test_frequentist.py
  (TestTwoSidedTTest; PostHog's run_test takes the treatment first).
"""

import numpy as np
import pytest
from scipy import stats

from core.statistics import (
    Arm,
    SampleRatio,
    benjamini_hochberg,
    chance_to_be_best,
    chance_to_beat,
    compare,
    expected_duration_days,
    expected_loss,
    floored_weights,
    holdout_lift,
    holm,
    mean,
    more_units_per_arm,
    period_weighted,
    proportion,
    ratio,
    relative_lift_credible_interval,
    relative_lift_variance,
    sample_ratio_mismatch,
    sample_size_per_arm,
    sequential_half_width,
    sequential_p_value,
    two_proportion_p_value,
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
    result = compare(Arm(3000, 1396), Arm(3461, 2422))
    assert result.relative_lift == pytest.approx(0.504, abs=5e-4)
    assert result.sequential_low == pytest.approx(0.401, abs=5e-4)
    assert result.sequential_high == pytest.approx(0.607, abs=5e-4)
    # The always-valid interval is wider than the fixed-horizon one.
    assert result.sequential_low < result.ci_low < result.relative_lift < result.ci_high < result.sequential_high


def test_two_proportion_p_value_matches_scipy_chi_square_without_correction():
    control, treatment = Arm(1000, 100), Arm(1000, 125)
    table = [[100, 900], [125, 875]]
    expected = stats.chi2_contingency(table, correction=False).pvalue
    assert two_proportion_p_value(control, treatment) == pytest.approx(expected, rel=1e-9)
    # The reported p-value tests the relative lift itself (unpooled delta method, as
    # gbstats), a different statistic: here 0.114 against the pooled test's 0.077.
    assert compare(control, treatment).p_value == pytest.approx(0.11400607, abs=1e-8)


def test_sequential_p_value_is_at_least_the_fixed_horizon_p_value():
    result = compare(Arm(1000, 100), Arm(1000, 125))
    assert result.p_value < result.sequential_p_value < 1


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


def test_comparison_is_not_enough_data_without_control_conversions_or_exposures():
    assert (compare(Arm(100, 0), Arm(100, 5)).enough_data, compare(Arm(100, 0), Arm(100, 5)).reason) == (
        False,
        "zero_baseline",
    )
    assert compare(Arm(0, 0), Arm(100, 5)).reason == "no_units"


# --- published reference cases: gbstats ---------------------------------------------------
# growthbook/growthbook packages/stats/tests/frequentist/test_tests.py


def test_gbstats_two_sided_ttest_relative_on_sample_means():
    # TestTwoSidedTTest.test_two_sided_ttest
    result = compare(mean(3407, 1396.87, 52377.9767), mean(3461, 2422.7, 134698.29))
    assert round(result.relative_lift, 5) == 0.70732
    assert (round(result.ci_low, 5), round(result.ci_high, 5)) == (-0.03526, 1.44989)
    assert round(result.standard_error, 5) == 0.37879
    assert round(result.p_value, 5) == 0.06191


def test_gbstats_two_sided_ttest_on_proportions():
    # TestTwoSidedTTest.test_two_sided_ttest_binom: 14/28 against 16/30
    result = compare(proportion(28, 14), proportion(30, 16))
    assert round(result.relative_lift, 5) == 0.06667
    assert (round(result.ci_low, 5), round(result.ci_high, 5)) == (-0.47767, 0.61101)
    assert round(result.standard_error, 5) == 0.2717
    assert round(result.p_value, 5) == 0.80707


def test_gbstats_negative_variance_is_not_enough_data():
    # TestTwoSidedTTest.test_two_sided_ttest_missing_variance: n=2 with these sums gives a
    # negative sample variance, and gbstats returns its default output.
    result = compare(mean(2, 1396.87, 52377.9767), mean(3461, 2422.7, 134698.29))
    assert (result.enough_data, result.reason, result.p_value, result.ci_low, result.relative_lift) == (
        False,
        "zero_variance",
        1.0,
        None,
        None,
    )


def test_gbstats_sequential_on_proportions():
    # TestSequentialTTest.test_sequential_test_runs_prop (default tuning 5000)
    result = compare(proportion(3000, 1396), proportion(3461, 2422))
    assert round(result.relative_lift, 5) == 0.50386
    assert (round(result.sequential_low, 5), round(result.sequential_high, 5)) == (0.40098, 0.60675)
    assert round(result.sequential_p_value, 5) == 0.0


def test_gbstats_sequential_on_means_with_tuning_1000():
    # TestSequentialTTest.test_sequential_test_runs (sequential_tuning_parameter=1000)
    result = compare(mean(3000, 1396.87, 52377.9767), mean(3461, 2422.7, 134698.29), tuning=1000)
    assert round(result.relative_lift, 5) == 0.50336
    assert (round(result.sequential_low, 5), round(result.sequential_high, 5)) == (-0.55844, 1.56516)
    assert round(result.standard_error, 5) == 0.33341
    assert result.sequential_p_value == 1


# --- published reference cases: PostHog ---------------------------------------------------
# PostHog/posthog products/experiments/stats/tests/test_frequentist.py (run_test(treatment, control))


def test_posthog_two_sided_ttest_on_proportions_87_of_1529_vs_62_of_1471():
    # test_two_sided_ttest_with_sample_proportion: control 87/1529, treatment 62/1471.
    result = compare(proportion(1529, 87), proportion(1471, 62))
    assert result.relative_lift == pytest.approx(-0.25925, abs=1e-4)
    assert result.ci_low == pytest.approx(-0.49475, abs=1e-4)
    assert result.ci_high == pytest.approx(-0.02376, abs=1e-4)
    assert result.p_value == pytest.approx(0.030960, abs=1e-4)
    # Defect 3: the pooled z test said p = 0.063 while this interval excludes 0.
    assert two_proportion_p_value(Arm(1529, 87), Arm(1471, 62)) == pytest.approx(0.063, abs=1e-3)
    assert result.significant is True and result.ci_high < 0


def test_posthog_two_sided_ttest_on_sample_means():
    # test_two_sided_ttest_with_sample_mean: treatment (1922.7, 94698.29, 2461), control (1196.87, 37377.9767, 2507)
    result = compare(mean(2507, 1196.87, 37377.9767), mean(2461, 1922.7, 94698.29))
    assert result.relative_lift == pytest.approx(0.63646, abs=1e-4)
    assert (result.ci_low, result.ci_high) == (pytest.approx(-0.0875, abs=1e-4), pytest.approx(1.36048, abs=1e-4))
    assert result.p_value == pytest.approx(0.08487, abs=1e-4)


def test_posthog_two_sided_ttest_on_a_ratio_metric():
    # test_two_sided_ttest_with_ratio_statistic (the shape of average order value)
    treatment = ratio(2034, 99673.9364269569, 11298745.182728939, 947, 947, 99673.9364269569)
    control = ratio(1966, 94605.79858780127, 10463129.505392816, 936, 936, 94605.79858780127)
    result = compare(control, treatment)
    assert result.relative_lift == pytest.approx(0.041333, abs=1e-4)
    assert (result.ci_low, result.ci_high) == (pytest.approx(0.01378609, abs=1e-4), pytest.approx(0.0689, abs=1e-4))
    assert result.p_value == pytest.approx(0.0032826, abs=1e-4)


# --- published reference cases: GrowthBook's multiple-testing corrections -------------------
# growthbook/growthbook packages/front-end/test/experiments.test.ts ("pvalue correction method")


def test_holm_matches_growthbook():
    assert holm([0.01, 0.04, 0.03, 0.005, 0.55, 0.6]) == pytest.approx([0.05, 0.12, 0.12, 0.03, 1, 1])


def test_benjamini_hochberg_matches_growthbook():
    adjusted = benjamini_hochberg([0.898, 0.138, 0.007, 0.964, 0.538, 0.006, 0.138])
    assert [round(p, 8) for p in adjusted] == [0.964, 0.2415, 0.0245, 0.964, 0.7532, 0.0245, 0.2415]


# --- defects of issue 10 ----------------------------------------------------------------------


def test_zero_conversions_in_one_arm_is_not_enough_data_not_minus_100_percent():
    result = compare(Arm(50, 2), Arm(50, 0))
    assert result.as_dict() == {
        "alpha": 0.05,
        "enough_data": False,
        "reason": "zero_variance",
        "control_mean": 0.04,
        "treatment_mean": 0.0,
        "relative_lift": None,
        "standard_error": None,
        "ci_low": None,
        "ci_high": None,
        "p_value": 1.0,
        "significant": False,
        "sequential_ready": False,
        "sequential_low": None,
        "sequential_high": None,
        "sequential_p_value": 1.0,
        "sequential_significant": False,
        "chance_to_win": None,
    }


def test_holdout_lift_of_a_cue_without_conversions_is_not_enough_data():
    lift = holdout_lift(Arm(200, 12), Arm(300, 0))
    assert (lift["enough_data"], lift["reason"], lift["relative_lift"], lift["ci_low"], lift["p_value"]) == (
        False,
        "zero_variance",
        None,
        None,
        1.0,
    )
    assert lift["sequential_low"] is None and lift["sequential_p_value"] == 1.0
    # The Bayesian figures stay, and say "probably worse", not "certainly -100%".
    assert lift["chance_to_beat_holdout"] == chance_to_beat(Arm(200, 12), Arm(300, 0))
    assert -1 < lift["credible_low"] < lift["credible_high"] < 0


def test_p_value_and_interval_agree_on_200_random_cases():
    rng = np.random.default_rng(10)
    disagreements = []
    for _ in range(200):
        n_c, n_t = (int(v) for v in rng.integers(50, 5000, 2))
        rate = rng.uniform(0.01, 0.3)
        x_c = int(rng.binomial(n_c, rate))
        x_t = int(rng.binomial(n_t, rate * rng.uniform(0.7, 1.4)))
        result = compare(Arm(n_c, x_c), Arm(n_t, x_t))
        if not result.enough_data:
            continue
        excludes = result.ci_low > 0 or result.ci_high < 0
        if excludes != (result.p_value < 0.05):
            disagreements.append((n_c, x_c, n_t, x_t))
        if result.sequential_ready:
            seq_excludes = result.sequential_low > 0 or result.sequential_high < 0
            if seq_excludes != (result.sequential_p_value < 0.05):
                disagreements.append(("sequential", n_c, x_c, n_t, x_t))
    assert disagreements == []


def test_sequential_p_value_is_alpha_where_the_sequence_touches_zero():
    control, treatment = proportion(4000, 400), proportion(4000, 460)
    result = compare(control, treatment)
    assert result.sequential_ready
    half = sequential_half_width(variance=relative_lift_variance(control, treatment), total=8000, alpha=0.05)
    assert result.sequential_high - result.relative_lift == pytest.approx(half)
    # Scale the lift so the sequence's edge is exactly at 0: there the p-value is alpha.
    edge = sequential_p_value(lift=half, variance=relative_lift_variance(control, treatment), total=8000, alpha=0.05)
    assert edge == pytest.approx(0.05, rel=1e-9)


def test_always_valid_test_holds_under_peeking_from_the_documented_minimum():
    # A/A, read every 100 visitors up to 10,000, 400 experiments at a 10% rate: the share
    # ever flagged must stay under 5% (the old figures flagged 13.5%).
    rng = np.random.default_rng(2026)
    flagged = 0
    for _ in range(400):
        n = np.zeros(2, dtype=np.int64)
        x = np.zeros(2, dtype=np.int64)
        for _look in range(100):
            in_b = rng.binomial(100, 0.5)
            shown = np.array([100 - in_b, in_b])
            n += shown
            x += rng.binomial(shown, 0.1)
            if compare(Arm(int(n[0]), int(x[0])), Arm(int(n[1]), int(x[1]))).sequential_significant:
                flagged += 1
                break
    assert flagged / 400 <= 0.05


def test_sequential_figures_wait_for_the_documented_minimum():
    below = compare(Arm(499, 100), Arm(500, 160))
    assert (below.sequential_ready, below.sequential_low, below.sequential_p_value) == (False, None, 1.0)
    assert below.significant is True  # the fixed-horizon figures are there
    few_conversions = compare(Arm(2000, 24), Arm(2000, 60))
    assert few_conversions.sequential_ready is False
    at = compare(Arm(500, 100), Arm(500, 160))
    assert at.sequential_ready is True and at.sequential_p_value < 0.05


def test_srm_skips_zero_weight_arms_instead_of_returning_nan():
    result = sample_ratio_mismatch([5100, 4900, 37], [0.5, 0.5, 0.0])
    reference = stats.chisquare([5100, 4900], f_exp=[5000, 5000]).pvalue
    assert result.p_value == pytest.approx(reference, rel=1e-12)
    assert (result.flagged, result.zero_weight_exposures) == (False, 37)
    assert sample_ratio_mismatch([100, 0], [1.0, 0.0]) == SampleRatio(None, False, 0)


def test_period_weighted_counts_are_the_pooled_counts_for_one_period():
    assert period_weighted([[Arm(400, 40), Arm(600, 72)]]) == [Arm(400.0, 40.0), Arm(600.0, 72.0)]


def test_period_weighted_counts_remove_the_bias_of_a_drifting_rate():
    # Both arms convert alike within each period; the rate doubles in the second period,
    # when the bandit had moved traffic to B. Pooled, B looks 41% better; weighted, equal.
    periods = [[Arm(5000, 250), Arm(5000, 250)], [Arm(1000, 100), Arm(9000, 900)]]
    pooled_a, pooled_b = Arm(6000, 350), Arm(14000, 1150)
    assert pooled_b.rate / pooled_a.rate - 1 == pytest.approx(0.408, abs=1e-3)
    a, b = period_weighted(periods)
    assert a.rate == pytest.approx(0.075) and b.rate == pytest.approx(0.075)
    # Effective exposures: (sum w)^2 / sum(w^2 / n) with w = 1/2, 1/2.
    assert a.exposures == pytest.approx(1 / (0.25 / 5000 + 0.25 / 1000))
    assert compare(a, b).relative_lift == pytest.approx(0.0, abs=1e-12)
    assert compare(pooled_a, pooled_b).significant is True


# --- power ------------------------------------------------------------------------------------


def test_sample_size_is_the_smallest_with_the_power():
    from core.statistics import _z

    n = sample_size_per_arm(0.1, 0.2, sequential=False)
    per_unit = 0.12 * 0.88 / 0.01 + 0.12**2 * 0.09 / 0.1**4
    closed_form = (_z(0.05) + stats.norm.ppf(0.8)) ** 2 * per_unit / 0.2**2
    assert n == pytest.approx(closed_form, abs=2)
    sequential = sample_size_per_arm(0.1, 0.2)
    assert sequential > n  # the always-valid test pays for reading at every window
    assert sample_size_per_arm(0.1, 0.2, arms=3) > sequential  # alpha split over two comparisons
    assert sample_size_per_arm(0.0, 0.2) is None
    with pytest.raises(ValueError):
        sample_size_per_arm(0.1, 0)


def test_expected_duration_and_visitors_left():
    assert expected_duration_days(7000, arms=2, daily_units=1000) == 14.0
    assert expected_duration_days(7000, arms=2, daily_units=1000, share=0.5) == 28.0
    assert expected_duration_days(7000, arms=2, daily_units=0) is None
    assert more_units_per_arm(7000, [5200, 4900]) == 2100
    assert more_units_per_arm(7000, [7200, 7100]) == 0


def test_holm_and_benjamini_hochberg_keep_a_single_p_value_and_the_order():
    assert holm([0.03]) == [0.03] and benjamini_hochberg([0.03]) == [0.03]
    assert holm([]) == [] and benjamini_hochberg([]) == []
    assert holm([0.04, 0.01]) == [0.04, 0.02]
    assert benjamini_hochberg([0.04, 0.01]) == [0.04, 0.02]
