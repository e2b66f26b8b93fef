"""The simulated checks of PRODUCT.md section 9, with fixed seeds: exact behaviour, not timing.

The budgets themselves are measured by ``python manage.py bench --only aa_false_positives
--only bandit_regret``, over more seeds.
"""

from devtools.benchmarks.experiments import aa_false_positive_rate, bandit_regret


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
