"""An experiment's report beyond the conversion rate: revenue, guardrails, Holm, sample size, verdict."""

from datetime import UTC, datetime

import pytest

from analytics.verdicts import percent
from core import hooks, statistics
from personalization.models import OptimizationProposal, ProposalKind
from personalization.services.optimizer import experiments_optimize
from tests.analytics.arm_data import arm_traffic
from tests.personalization.optimizer_helpers import live_experiment, variant

pytestmark = pytest.mark.django_db

URL = "/api/v1/analytics/experiments/hero-test"
NOW = datetime(2026, 11, 21, 10, 7, tzinfo=UTC)


def hero(site, *, treatment_bounces: int):
    """Control: 2,000 sessions, 200 orders of 40 and 60 EUR, 400 bounces; treatment: 2,000 sessions,
    280 orders of 45 and 65 EUR, 10 refunded, ``treatment_bounces`` bounces."""
    experiment = live_experiment(site, minimum_sample=100)
    arm_traffic(experiment, "a", sessions=2000, orders=["40.00", "60.00"] * 100, ttc_minutes=4, bounces=400)
    arm_traffic(
        experiment,
        "b",
        sessions=2000,
        orders=["45.00", "65.00"] * 140,
        ttc_minutes=4,
        refunds=10,
        bounces=treatment_bounces,
    )
    return experiment


def test_revenue_per_session_and_order_value_are_compared_in_the_experiments_currency(staff_api, site):
    hero(site, treatment_bounces=400)

    report = staff_api.get(URL).json()

    control, treatment = report["variants"]
    assert report["currency"] == "EUR"
    assert {k: control["revenue"][k] for k in ("currency", "total", "orders", "other_currency_orders")} == {
        "currency": "EUR",
        "total": "10000.00",
        "orders": 200,
        "other_currency_orders": 0,
    }
    assert (treatment["revenue"]["total"], treatment["revenue"]["orders"]) == ("15400.00", 280)
    per_session = statistics.compare(
        statistics.mean(2000, 10000.0, 100 * 40.0**2 + 100 * 60.0**2),
        statistics.mean(2000, 15400.0, 140 * 45.0**2 + 140 * 65.0**2),
    )
    assert control["revenue"]["per_session"] | {"value": 5.0} == control["revenue"]["per_session"]
    assert control["revenue"]["per_session"]["relative_change"] is None
    assert treatment["revenue"]["per_session"] == {
        "metric": "revenue_per_session",
        "label": "revenue per session",
        "unit": "currency",
        "value": 7.7,
        "relative_change": per_session.relative_lift,
        "ci_low": per_session.ci_low,
        "ci_high": per_session.ci_high,
        "p_value": per_session.p_value,
        "p_value_holm": per_session.p_value,
        "enough_data": True,
        "significant": True,
        "worse": False,
    }
    aov = statistics.compare(
        statistics.ratio(2000, 10000.0, 520000.0, 200, 200, 10000.0),
        statistics.ratio(2000, 15400.0, 140 * (45.0**2 + 65.0**2), 280, 280, 15400.0),
    )
    assert treatment["revenue"]["average_order_value"]["value"] == pytest.approx(55.0)
    assert treatment["revenue"]["average_order_value"]["relative_change"] == pytest.approx(0.1)
    assert treatment["revenue"]["average_order_value"]["ci_low"] == aov.ci_low


def test_a_guardrail_significantly_worse_is_flagged_named_in_the_verdict_and_blocks_the_winner(staff_api, site):
    # given: the treatment converts better (14% vs 10%) but bounces more (30% vs 20%)
    experiment = hero(site, treatment_bounces=600)

    # when
    report = staff_api.get(URL).json()
    experiments_optimize(now=NOW)

    # then: the bounce rate is worse, the refunds are not significant, time to convert equal
    _, treatment = report["variants"]
    bounce = statistics.compare(statistics.proportion(2000, 400), statistics.proportion(2000, 600))
    guardrails = {row["metric"]: row for row in treatment["guardrails"]}
    assert list(guardrails) == ["bounce_rate", "refund_rate", "time_to_convert"]
    assert (
        guardrails["bounce_rate"]
        | {
            "value": 0.3,
            "relative_change": bounce.relative_lift,
            "ci_low": bounce.ci_low,
            "ci_high": bounce.ci_high,
            "worse": True,
        }
        == guardrails["bounce_rate"]
    )
    assert (guardrails["refund_rate"]["value"], guardrails["refund_rate"]["enough_data"]) == (0.005, False)
    assert guardrails["refund_rate"]["worse"] is False
    assert (guardrails["time_to_convert"]["value"], guardrails["time_to_convert"]["worse"]) == (240.0, False)
    assert hooks.guardrails_worse(experiment=experiment, variant_id=variant(experiment, "b").pk) == ["bounce rate"]
    assert report["verdict"] == {
        "kind": "guardrail",
        "text": f"guardrail bounce rate worse for hero-test-b (bounce rate {percent(bounce.relative_lift)}, "
        f"95% interval {percent(bounce.ci_low)} to {percent(bounce.ci_high)})",
        "variant": "hero-test-b",
    }
    assert not OptimizationProposal.objects.filter(kind=ProposalKind.DECLARE_WINNER).exists()


def test_without_a_worse_guardrail_the_verdict_names_the_winner_and_the_optimizer_proposes_it(staff_api, site):
    hero(site, treatment_bounces=400)

    report = staff_api.get(URL).json()
    experiments_optimize(now=NOW)

    _, treatment = report["variants"]
    assert treatment["sequential_p_value_holm"] < 0.05
    assert report["verdict"] == {
        "kind": "winner",
        "text": f"winner: hero-test-b (conversion rate +40%, 95% interval {percent(treatment['sequential_low'])} "
        f"to {percent(treatment['sequential_high'])})",
        "variant": "hero-test-b",
    }
    [proposal] = OptimizationProposal.objects.filter(kind=ProposalKind.DECLARE_WINNER)
    assert proposal.proposed["key"] == "hero-test-b"


def test_several_treatments_get_holm_adjusted_p_values_beside_the_raw_ones(staff_api, site):
    experiment = live_experiment(site, arms=3, minimum_sample=100)
    for letter, orders in (("a", 100), ("b", 115), ("c", 130)):
        arm_traffic(experiment, letter, sessions=1000, orders=["30.00", "50.00"] * (orders // 2))

    variants = staff_api.get(URL).json()["variants"]

    raw = [v["p_value"] for v in variants[1:]]
    assert [v["p_value_holm"] for v in variants] == [None, *statistics.holm(raw)]
    # the smallest p-value is doubled (two treatments read together)
    assert variants[2]["p_value_holm"] == 2 * variants[2]["p_value"]
    revenue = [v["revenue"]["per_session"] for v in variants]
    assert [r["p_value_holm"] for r in revenue] == [None, *statistics.holm([r["p_value"] for r in revenue[1:]])]


def test_a_test_without_a_difference_says_how_many_more_visitors_each_arm_needs(staff_api, site):
    experiment = live_experiment(site, minimum_sample=100)
    arm_traffic(experiment, "a", sessions=300, orders=["20.00"] * 30)
    arm_traffic(experiment, "b", sessions=300, orders=["20.00"] * 31)

    report = staff_api.get(URL).json()

    per_arm = statistics.sample_size_per_arm(0.1, statistics.DEFAULT_MDE, arms=2)
    assert (report["sample_size"]["per_arm"], report["sample_size"]["more_per_arm"]) == (per_arm, per_arm - 300)
    assert report["verdict"]["kind"] == "keep_running"
    assert report["verdict"]["text"].startswith("no difference detected yet: about ")
    assert report["verdict"]["text"].endswith(" more visitors per arm")


def test_pages_share_the_sums_for_a_minute_while_the_optimizers_guardrail_check_reads_fresh(staff_api, site):
    # given: a report read once, then the treatment's sessions bounce much more
    experiment = hero(site, treatment_bounces=400)
    before = staff_api.get(URL).json()
    arm_traffic(experiment, "b", sessions=1000, bounces=1000)

    # when
    again = staff_api.get(URL).json()
    worse = hooks.guardrails_worse(experiment=experiment, variant_id=variant(experiment, "b").pk)

    # then: the report keeps the sums it computed (a minute), the check sees the new sessions
    assert again["variants"][1]["guardrails"] == before["variants"][1]["guardrails"]
    assert again["variants"][1]["revenue"] == before["variants"][1]["revenue"]
    assert worse == ["bounce rate"]
