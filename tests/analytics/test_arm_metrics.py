"""Per-arm sums for revenue and guardrails: one SQL statement, per session first."""

from datetime import timedelta
from decimal import Decimal

import pytest

from analytics.arm_metrics import ArmSums, experiment_arm_sums, rule_arm_sums
from journeys.models import ConversionEvent
from tests.analytics.arm_data import arm_traffic, conversion
from tests.personalization.optimizer_helpers import live_experiment, variant

pytestmark = pytest.mark.django_db


def test_sums_are_taken_per_session_then_per_arm(site):
    # given: control a: 4 sessions, two buying 10.00 and 30.00 after 2 minutes, one bouncing;
    # treatment b: 3 sessions, one buying 20.00 and then 5.00 (two orders in one session),
    # refunded, after 10 minutes
    experiment = live_experiment(site)
    arm_traffic(experiment, "a", sessions=4, orders=["10.00", "30.00"], ttc_minutes=2, bounces=1)
    [buyer, *_] = arm_traffic(experiment, "b", sessions=3, orders=["20.00"], ttc_minutes=10, refunds=1)
    ConversionEvent.objects.bulk_create([conversion(buyer, "purchase", buyer.started_at + timedelta(minutes=30), "5")])

    # when
    sums = experiment_arm_sums([experiment.pk])[experiment.pk]

    # then
    a, b = variant(experiment, "a").pk, variant(experiment, "b").pk
    assert sums[a] == ArmSums(
        sessions=4,
        revenue=Decimal("40.00"),
        revenue_squares=Decimal("1000.0000"),
        orders=2,
        orders_squares=2,
        revenue_orders=Decimal("40.00"),
        other_currency_orders=0,
        reversed=0,
        bounced=1,
        converted=2,
        ttc_seconds=240.0,
        ttc_seconds_squares=2 * 120.0**2,
        currency="EUR",
    )
    assert sums[b] == ArmSums(
        sessions=3,
        revenue=Decimal("25.00"),
        revenue_squares=Decimal("625.0000"),
        orders=2,
        orders_squares=4,
        revenue_orders=Decimal("50.00"),
        other_currency_orders=0,
        reversed=1,
        bounced=0,
        converted=1,
        ttc_seconds=600.0,
        ttc_seconds_squares=600.0**2,
        currency="EUR",
    )


def test_revenue_is_in_the_currency_of_most_orders_and_others_are_counted_apart(site):
    experiment = live_experiment(site)
    [usd, *_] = arm_traffic(experiment, "a", sessions=2, orders=["10.00"])
    arm_traffic(experiment, "b", sessions=2, orders=["7.00", "8.00"])
    ConversionEvent.objects.bulk_create([conversion(usd, "purchase", usd.started_at, "99.00", currency="USD")])

    sums = experiment_arm_sums([experiment.pk])[experiment.pk]

    a, b = sums[variant(experiment, "a").pk], sums[variant(experiment, "b").pk]
    assert (a.currency, a.revenue, a.orders, a.other_currency_orders) == ("EUR", Decimal("10.00"), 1, 1)
    assert (b.currency, b.revenue, b.orders, b.other_currency_orders) == ("EUR", Decimal("15.00"), 2, 0)


def test_conversions_before_the_exposure_do_not_count(site):
    experiment = live_experiment(site)
    [session] = arm_traffic(experiment, "a", sessions=1)
    ConversionEvent.objects.bulk_create(
        [conversion(session, "purchase", session.started_at - timedelta(minutes=1), "50.00")]
    )

    [sums] = experiment_arm_sums([experiment.pk])[experiment.pk].values()

    assert (sums.sessions, sums.revenue, sums.orders, sums.converted, sums.currency) == (1, 0, 0, 0, None)


def test_rule_sums_compare_the_sessions_shown_a_cue_with_the_held_out_ones(site, api, django_user_model):
    from personalization.models import HoldoutMembership, TriggerType
    from tests.personalization.helpers import staff
    from tests.personalization.scarcity_helpers import live_offer, make_rule

    people = staff(django_user_model, "mia", "Marketers"), staff(django_user_model, "ada", "Approvers")
    rule = make_rule(site, live_offer(site, people, stock=3), TriggerType.LOW_STOCK, people, threshold=5)
    experiment = live_experiment(site)
    shown = arm_traffic(experiment, "a", sessions=3, orders=["12.50"], bounces=1)
    held = arm_traffic(experiment, "b", sessions=2, refunds=0, bounces=2)
    HoldoutMembership.objects.bulk_create(
        HoldoutMembership(rule=rule, session=s, in_holdout=s in held, bucket=0.5, assigned_at=s.started_at)
        for s in shown + held
    )

    [sums] = rule_arm_sums([rule.pk], goal="purchase").values()

    assert (sums[1].sessions, sums[1].revenue, sums[1].orders, sums[1].bounced, sums[1].converted) == (
        3,
        Decimal("12.50"),
        1,
        1,
        1,
    )
    assert (sums[0].sessions, sums[0].revenue, sums[0].bounced, sums[0].currency) == (2, 0, 2, "EUR")
    assert rule_arm_sums([rule.pk], goal="purchase", since=shown[0].started_at + timedelta(seconds=1)) == {}


def test_a_quiet_session_that_converted_is_not_a_bounce(site):
    # given: two sessions with one touchpoint each, still in awareness; the first buys
    experiment = live_experiment(site)
    arm_traffic(experiment, "a", sessions=2, orders=["10.00"], bounces=2)

    [sums] = experiment_arm_sums([experiment.pk])[experiment.pk].values()

    assert (sums.sessions, sums.bounced, sums.converted) == (2, 1, 1)
