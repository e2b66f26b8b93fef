"""Abuse of the public key: 10,000 page views from one address, a crawler's and headless browsers' visits.

Three people visit the shop through the API (one reloads the offer five times). A crawler,
a headless browser and a browser driven by automation visit too. One address floods: it
starts a session per page view, as a script inflating "N people viewed this" would, until
its rate limit answers 429 (real requests through the API); the rest of its 10,000 page
views are stored in bulk in its sessions. Social proof, the experiment's exposures and
the rollups must stay exactly where the three people put them.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone

from analytics import queries
from analytics.conversion_training import training_data
from analytics.filters import filters_parse
from analytics.models import AutomatedSessionDaily, SessionDaily, VariantDaily
from analytics.rollups import ALL_ROLLUP_MODELS, rollups_recompute, rollups_update
from core.rate_limits import counter
from journeys.models import JourneySession, StageTransition, Touchpoint
from personalization.models import Experiment, Exposure, TriggerType
from personalization.services.optimizer import experiment_results
from personalization.services.scarcity.evidence import scarcity_evidence_refresh
from tests.journeys.helpers import JourneySessionFactory, event
from tests.journeys.test_automation import CHROME, GOOGLEBOT, HEADLESS
from tests.personalization.helpers import created, make_people
from tests.personalization.scarcity_helpers import approve, carrying_variant, cues, live_offer, make_rule

pytestmark = pytest.mark.django_db

SKU = "A1"
FLOOD = "203.0.113.66"
FLOOD_LIMIT = 25  # requests per window from one address, for this test
FLOOD_HTTP_PAGE_VIEWS = 100  # sent through the API: FLOOD_LIMIT accepted, the rest refused
PAGE_VIEWS = 10_000
PEOPLE = {"s-ann": "198.51.100.1", "s-bob": "198.51.100.2", "s-cem": "198.51.100.3"}


@pytest.fixture(autouse=True)
def _fresh_counter():
    counter.forget()
    yield
    counter.forget()


@pytest.fixture
def shop(site, django_user_model, settings):
    """The offer A1 in an experiment's slot (both arms carry it) and a "people viewed" rule."""
    settings.RATE_LIMIT_ADDRESS_REQUESTS = FLOOD_LIMIT
    people = make_people(django_user_model)
    offer = live_offer(site, people, sku=SKU)
    variant_a = carrying_variant(site, offer, people, key="banner-a", is_default=True)
    variant_b = carrying_variant(site, offer, people, key="banner-b")
    experiment = created(
        Experiment(site=site, key="banner-test", name="Banner test", slot=variant_a.slot),
        people,
        arms=[
            {"variant": variant_a.pk, "is_control": True, "weight": 0.5},
            {"variant": variant_b.pk, "is_control": False, "weight": 0.5},
        ],
    )
    experiment = approve(experiment, people)
    make_rule(site, offer, TriggerType.SOCIAL_PROOF_VIEWS, people, threshold=1)
    return experiment


def page_view(api, session_id: str, address: str, user_agent: str = CHROME, **device):
    """A new session's first page: its start decides the offer banner (an exposure)."""
    body = {
        "session_id": session_id,
        "visitor_id": f"v-{session_id}",
        "device": {"type": "desktop", **device},
        "consent": {"personalization": True},
        "slots": ["offer_banner"],
    }
    return api.post("/api/v1/sessions", body, format="json", REMOTE_ADDR=address, HTTP_USER_AGENT=user_agent)


def product_views(api, session_id: str, address: str, count: int, user_agent: str = CHROME):
    events = [event(session_id, interaction_type="product_view", interaction_data={"sku": SKU}) for _ in range(count)]
    response = api.post(
        "/api/v1/events", {"events": events}, format="json", REMOTE_ADDR=address, HTTP_USER_AGENT=user_agent
    )
    assert response.json()["accepted"] == count, response.json()


def traffic(api) -> list[JourneySession]:
    """Everyone's visits; the flood's sessions."""
    for session_id, address in PEOPLE.items():
        assert page_view(api, session_id, address).status_code == 201
    product_views(api, "s-ann", PEOPLE["s-ann"], 5)  # one person reloading: still one person
    assert page_view(api, "s-googlebot", "66.249.66.1", GOOGLEBOT).status_code == 201
    product_views(api, "s-googlebot", "66.249.66.1", 20, GOOGLEBOT)
    assert page_view(api, "s-headless", "192.0.2.10", HEADLESS).status_code == 201
    assert page_view(api, "s-driven", "192.0.2.11", webdriver=True).status_code == 201

    answers = Counter()
    for index in range(FLOOD_HTTP_PAGE_VIEWS):
        response = page_view(api, f"s-flood-{index}", FLOOD)
        answers[response.status_code] += 1
        if response.status_code == 429:
            assert response.json()["code"] == "rate_limited_address"
            assert 1 <= int(response["Retry-After"]) <= 60
    assert answers == {201: FLOOD_LIMIT, 429: FLOOD_HTTP_PAGE_VIEWS - FLOOD_LIMIT}

    flood = list(JourneySession.objects.filter(session_id__startswith="s-flood-").order_by("id"))
    rest = PAGE_VIEWS - FLOOD_HTTP_PAGE_VIEWS
    now = timezone.now()
    Touchpoint.objects.bulk_create(
        Touchpoint(
            site_id=flood[0].site_id,
            session=flood[index % len(flood)],
            event_id=uuid.uuid4(),
            sequence=1000 + index,
            type="interaction",
            interaction_type="product_view",
            interaction_data={"sku": SKU},
            client_timestamp=now,
            received_at=now,
            payload_hash="0" * 32,
        )
        for index in range(rest)
    )
    return flood


def rollup_rows() -> dict:
    return {
        model.__name__: sorted(model.objects.values_list(*[f.attname for f in model._meta.fields if f.name != "id"]))
        for model in ALL_ROLLUP_MODELS
    }


def people_exposures(experiment) -> dict[str, int]:
    """Per variant key, the three people's exposures: where they put the experiment."""
    exposed = Exposure.objects.filter(experiment=experiment, session__session_id__in=PEOPLE)
    return dict(Counter(exposed.values_list("variant__key", flat=True)))


def test_a_flood_and_automated_visits_leave_social_proof_experiments_and_rollups_to_the_people(api, site, shop):
    flood = traffic(api)

    # the flood's page views all reached the database, its sessions marked as a flood
    assert Touchpoint.objects.filter(session__in=flood).count() + FLOOD_HTTP_PAGE_VIEWS == PAGE_VIEWS
    assert dict(JourneySession.objects.exclude(automated="").values_list("session_id", "automated")) == {
        "s-googlebot": "crawler:Googlebot",
        "s-headless": "headless:HeadlessChrome",
        "s-driven": "webdriver",
        **{session.session_id: "flood" for session in flood},
    }

    # social proof: the three people
    scarcity_evidence_refresh()
    [cue] = cues("s-bob")
    assert (cue["message"], cue["evidence"]["count"]) == ("3 people viewed this in the last hour", 3)

    # the experiment: exposures of the three people only, where they were assigned
    arms = {row["key"]: row["exposures"] for row in experiment_results(experiment=shop)["variants"]}
    people = people_exposures(shop)
    assert sum(people.values()) == 3
    assert arms == {"banner-a": people.get("banner-a", 0), "banner-b": people.get("banner-b", 0)}

    # the rollups: the three people's sessions, the others counted apart
    rollups_update()
    today = timezone.now().date()
    assert SessionDaily.objects.filter(site=site, day=today).aggregate(n=Sum("sessions"), t=Sum("touchpoints")) == {
        "n": 3,
        "t": 5,
    }
    variant_rows = VariantDaily.objects.filter(site=site, experiment=shop).values_list("variant__key", "exposures")
    assert dict(variant_rows) == people
    filters = filters_parse({"site": str(site.pk)})
    assert queries.overview_totals(filters).as_records()[0]["sessions"] == 3
    assert queries.automated_sessions(filters).rows == [
        ("flood", FLOOD_LIMIT),
        ("crawler:Googlebot", 1),
        ("headless:HeadlessChrome", 1),
        ("webdriver", 1),
    ]
    assert AutomatedSessionDaily.objects.filter(site=site, day=today).aggregate(n=Sum("sessions"))["n"] == 28

    # and the rollups equal a recompute from raw rows
    rolled = rollup_rows()
    rollups_recompute(site_id=site.pk)
    assert rollup_rows() == rolled


def test_with_automated_sessions_included_a_flood_still_counts_as_nobody_in_social_proof(api, site, shop, settings):
    settings.AUTOMATED_SESSIONS_EXCLUDED = False
    traffic(api)

    scarcity_evidence_refresh()
    [cue] = cues("s-bob")

    # the people, the crawler, the headless and the driven browser; the flood's address has
    # 25 visitors and 9,925 views, so it counts as nobody
    assert cue["evidence"]["count"] == 6
    arms = {row["key"]: row["exposures"] for row in experiment_results(experiment=shop)["variants"]}
    assert sum(arms.values()) == 3 + 3 + FLOOD_LIMIT


def test_ten_thousand_page_views_under_the_limit_raise_no_count(api, site, shop):
    for session_id, address in PEOPLE.items():
        assert page_view(api, session_id, address).status_code == 201
    # one session, 10,000 product views in ten batches: ten requests, well under the limit
    assert page_view(api, "s-reloader", FLOOD).status_code == 201
    for _ in range(PAGE_VIEWS // 1000):
        product_views(api, "s-reloader", FLOOD, 1000)
    # eleven browsers behind one address, one view each
    for index in range(11):
        assert page_view(api, f"s-nat-{index}", "192.0.2.99").status_code == 201
    # two browsers behind another: one person at most
    for index in range(2):
        assert page_view(api, f"s-home-{index}", "192.0.2.50").status_code == 201

    scarcity_evidence_refresh()
    [cue] = cues("s-bob")

    assert Touchpoint.objects.filter(session__session_id="s-reloader").count() == PAGE_VIEWS
    assert not JourneySession.objects.exclude(automated="").exists()
    assert (cue["message"], cue["evidence"]["count"]) == ("4 people viewed this in the last hour", 4)


def test_the_conversion_model_trains_on_the_peoples_sessions_only(site):
    ended = timezone.now() - timedelta(hours=2)
    people = [JourneySessionFactory(site=site, started_at=ended, last_activity_at=ended, ended_at=ended)]
    JourneySessionFactory(site=site, started_at=ended, last_activity_at=ended, ended_at=ended, automated="flood")
    JourneySessionFactory(
        site=site, started_at=ended, last_activity_at=ended, ended_at=ended, automated="crawler:Googlebot"
    )

    for session in JourneySession.objects.filter(site=site):
        StageTransition.objects.create(session=session, to_stage="awareness", conversion_probability=0.1)

    data = training_data(site_id=site.pk, now=timezone.now())

    assert {row.session_id for row in data.rows} == {session.session_id for session in people}
