"""The simulated checks of PRODUCT.md section 9, with fixed seeds: exact behaviour, not timing.

The budgets themselves are measured by ``python manage.py bench --only aa_false_positives
--only bandit_regret``, over more seeds.
"""

from devtools.benchmarks.experiments import aa_false_positive_rate, bandit_regret, optimizer_winner_rate


def test_200_aa_tests_have_a_false_positive_rate_near_alpha():
    result = aa_false_positive_rate(n_tests=200, seed=20261121)

    assert 0.03 <= result.fixed_horizon_rate <= 0.07
    assert result.sequential_rate <= result.fixed_horizon_rate
    # Reading the fixed-horizon test after every batch inflates it; the always-valid one holds.
    assert result.peeking_fixed_rate > 0.07
    assert result.peeking_sequential_rate <= 0.05


def test_bandit_on_a_known_winner_has_less_than_half_the_regret_of_a_fixed_split():
    result = bandit_regret(rates=(0.10, 0.12), visitors=20_000, seeds=range(10))

    assert result.ratio < 0.5
    assert result.bandit_best_share > 0.8


def test_the_winner_rule_through_the_optimizers_decision_code():
    """Few experiments over 3 simulated days: the bench's machinery, with exact outcomes for its seed."""
    aa = optimizer_winner_rate(experiments=10, days=3, daily_visitors=3000, seed=1)
    lifted = optimizer_winner_rate(experiments=10, days=3, daily_visitors=3000, base_rates=(0.1, 0.1), lift=0.5, seed=1)

    assert (aa.windows, aa.cadence_minutes, aa.minimum_sample) == (864, 5, 1000)
    assert aa.winners == 0
    # Every window's counts changed (about 10 visitors a window), so every one was decided.
    assert aa.decisions == 10 * 864
    assert lifted.winners == 10
    # Each winner came once the always-valid test passed, after the minimum sample.
    assert lifted.final_exposures_per_arm >= 1000
    assert 0 < lifted.median_days_to_winner < 3
