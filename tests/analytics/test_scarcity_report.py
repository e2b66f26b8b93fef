"""Several cue rules read together: Holm beside the raw p-values, and guardrails against each rule's holdout."""

import pytest

from analytics import queries
from analytics.filters import filters_parse
from analytics.rollups import rollups_update
from core import statistics
from personalization.models import HoldoutMembership, TriggerType
from tests.analytics.arm_data import arm_traffic
from tests.personalization.helpers import staff
from tests.personalization.optimizer_helpers import live_experiment
from tests.personalization.scarcity_helpers import live_offer, make_rule

pytestmark = pytest.mark.django_db


def rule_with_traffic(site, offer, people, key: str, *, shown: dict, held: dict):
    """A rule whose eligible sessions are ``shown`` the cue or ``held`` out (``arm_traffic`` arguments)."""
    rule = make_rule(site, offer, TriggerType.LOW_STOCK, people, key=key, threshold=5, holdout_share=0.5)
    experiment = live_experiment(site, key=f"sessions-{key}")
    exposed = arm_traffic(experiment, "a", **shown)
    holdout = arm_traffic(experiment, "b", **held)
    HoldoutMembership.objects.bulk_create(
        HoldoutMembership(rule=rule, session=s, in_holdout=s in holdout, bucket=0.5, assigned_at=s.started_at)
        for s in exposed + holdout
    )
    return rule


@pytest.fixture
def two_rules(site, django_user_model):
    people = staff(django_user_model, "mia", "Marketers"), staff(django_user_model, "ada", "Approvers")
    offer = live_offer(site, people, stock=3)
    # rule-a: 12% vs 8% purchases, and shown sessions bounce more (25% vs 15%)
    rule_with_traffic(
        site,
        offer,
        people,
        "rule-a",
        shown={"sessions": 1000, "orders": ["30.00"] * 120, "bounces": 250},
        held={"sessions": 1000, "orders": ["30.00"] * 80, "bounces": 150},
    )
    # rule-b: 10% vs 9%, same bounce
    rule_with_traffic(
        site,
        offer,
        people,
        "rule-b",
        shown={"sessions": 1000, "orders": ["30.00"] * 100, "bounces": 150},
        held={"sessions": 1000, "orders": ["30.00"] * 90, "bounces": 150},
    )


def test_the_scarcity_api_gives_holm_p_values_and_guardrails_against_the_holdout(staff_api, two_rules):
    rules = {rule["rule"]: rule for rule in staff_api.get("/api/v1/analytics/scarcity").json()["rules"]}

    a, b = rules["rule-a"], rules["rule-b"]
    assert (a["exposed"]["conversions"], a["holdout"]["conversions"]) == (120, 80)
    raw = [a["lift"]["p_value"], b["lift"]["p_value"]]
    assert raw == [
        statistics.compare(statistics.Arm(1000, 80), statistics.Arm(1000, 120)).p_value,
        statistics.compare(statistics.Arm(1000, 90), statistics.Arm(1000, 100)).p_value,
    ]
    assert [a["lift"]["p_value_holm"], b["lift"]["p_value_holm"]] == statistics.holm(raw)
    assert a["lift"]["p_value_holm"] == 2 * a["lift"]["p_value"]

    bounce = statistics.compare(statistics.proportion(1000, 150), statistics.proportion(1000, 250))
    [a_bounce, _, _] = a["guardrails"]
    assert a_bounce == {
        "metric": "bounce_rate",
        "label": "bounce rate",
        "unit": "percent",
        "value": 0.25,
        "relative_change": bounce.relative_lift,
        "ci_low": bounce.ci_low,
        "ci_high": bounce.ci_high,
        "p_value": bounce.p_value,
        "enough_data": True,
        "significant": True,
        "worse": True,
    }
    assert [g["worse"] for g in b["guardrails"]] == [False, False, False]
    assert (a["revenue"]["total"], a["revenue"]["currency"]) == ("3600.00", "EUR")


def test_the_scarcity_page_table_gives_the_same_holm_p_values(staff_api, two_rules, site):
    rollups_update()
    api = {rule["rule"]: rule["lift"] for rule in staff_api.get("/api/v1/analytics/scarcity").json()["rules"]}

    table = queries.scarcity_rules(filters_parse({"site": str(site.pk)}))

    holm = dict(zip(table.column("rule"), table.column("p_value_holm"), strict=True))
    assert holm == {"rule-a": api["rule-a"]["p_value_holm"], "rule-b": api["rule-b"]["p_value_holm"]}
