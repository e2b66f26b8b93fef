"""``GET /api/v1/analytics/...``: the dashboards' numbers from the rollups, for staff."""

from __future__ import annotations

from datetime import timedelta

import pytest

from analytics.rollups import rollups_update
from tests.analytics.rollup_helpers import DAY1, DAY2, advance, convert, personalize, session, world

pytestmark = pytest.mark.django_db

RANGE = {"date_from": "2026-11-10", "date_to": "2026-11-11"}


@pytest.fixture
def rolled_up(site, other_site):
    w = world(site)
    a = session(site, "a", at=DAY1, persona="TechEarlyAdopter")
    advance(a, "consideration")
    advance(a, "decision")
    convert(a, "49.90", at=DAY1 + timedelta(minutes=10))
    personalize(a, w.variant_a, strategy="viral_hook_replication", engagement_time=30, confidence=0.85, attributed=True)
    b = session(
        site,
        "b",
        at=DAY1 + timedelta(hours=2),
        device="desktop",
        path="desktop_research_deep",
        persona="Researcher",
        cross_device=True,
    )
    advance(b, "consideration")
    personalize(b, w.variant_b, strategy="comparison_table", engagement_time=12)
    c = session(site, "c", at=DAY2, persona="TechEarlyAdopter")
    convert(c, "20.00", at=DAY2 + timedelta(seconds=30))
    personalize(c, None, strategy="viral_hook_replication", engagement_time=10, confidence=0.65)
    o = session(other_site, "o", at=DAY1, device="tablet", path="standard_conversion_funnel")
    convert(o, "5.00", at=DAY1 + timedelta(minutes=1))
    rollups_update()
    return site


def get(client, page: str, **params):
    return client.get(f"/api/v1/analytics/{page}", params)


def test_overview_returns_the_pages_tables_with_exact_numbers(staff_api, rolled_up):
    response = get(staff_api, "overview", site=rolled_up.pk, **RANGE)

    assert response.status_code == 200
    body = response.json()
    assert body["filters"] == {
        "date_from": "2026-11-10",
        "date_to": "2026-11-11",
        "site": rolled_up.pk,
        "device": None,
        "path": None,
        "persona": None,
    }
    tables = body["tables"]
    assert list(tables) == ["overview_totals", "overview_timeseries", "funnel", "paths_compared", "automated_sessions"]
    assert tables["overview_totals"]["columns"] == [
        "sessions",
        "conversions",
        "conversion_rate",
        "sessions_with_any_conversion",
        "conversion_events",
        "revenue",
        "currency",
        "revenue_per_session",
        "cross_device_share",
    ]
    # two sessions bought, but neither reached the conversion stage: the overview's
    # conversions are the funnel's conversion row (0); the events are counted apart
    assert tables["overview_totals"]["rows"] == [[3, 0, 0.0, 2, 2, "69.90", "EUR", 69.9 / 3, 1 / 3]]
    assert tables["overview_timeseries"]["columns"] == ["day", "sessions", "conversions", "conversion_rate", "revenue"]
    assert tables["overview_timeseries"]["rows"] == [
        ["2026-11-10", 2, 0, 0.0, "49.90"],
        ["2026-11-11", 1, 0, 0.0, "20.00"],
    ]
    assert tables["funnel"]["columns"] == [
        "stage",
        "sessions_reached",
        "share_of_sessions",
        "drop_off",
        "drop_off_rate",
    ]
    assert tables["funnel"]["rows"] == [
        ["awareness", 3, 1.0, 0, None],
        ["consideration", 2, 2 / 3, 1, 1 / 3],
        ["decision", 1, 1 / 3, 1, 0.5],
        ["conversion", 0, 0.0, 1, 1.0],
        ["retention", 0, 0.0, 0, None],
    ]
    assert tables["paths_compared"]["rows"] == [
        ["mobile_tiktok_fast_track", 2, 0, 0.0, "69.90", 34.95, 315.0],
        ["desktop_research_deep", 1, 0, 0.0, "0.00", 0.0, None],
    ]


def test_filters_narrow_the_numbers(staff_api, rolled_up):
    desktop = get(staff_api, "funnel", site=rolled_up.pk, device="desktop", **RANGE).json()
    assert desktop["tables"]["funnel"]["rows"][:2] == [
        ["awareness", 1, 1.0, 0, None],
        ["consideration", 1, 1.0, 0, 0.0],
    ]
    everyone = get(staff_api, "timeseries", **RANGE).json()["tables"]["overview_timeseries"]["rows"]
    assert everyone == [["2026-11-10", 3, 0, 0.0, "54.90"], ["2026-11-11", 1, 0, 0.0, "20.00"]]
    persona = get(staff_api, "overview", persona="Researcher", **RANGE).json()["tables"]["overview_totals"]["rows"]
    assert persona == [[1, 0, 0.0, 0, 0, "0.00", "EUR", 0.0, 1.0]]


def test_journeys_has_stage_flows_and_time_to_convert(staff_api, rolled_up):
    tables = get(staff_api, "journeys", site=rolled_up.pk, **RANGE).json()["tables"]

    assert list(tables) == ["stage_flows", "paths_compared", "time_to_convert", "cross_device_share", "persona_mix"]
    assert tables["stage_flows"]["columns"] == ["path", "from_stage", "to_stage", "count", "sessions"]
    assert tables["stage_flows"]["rows"] == [
        ["desktop_research_deep", "start", "awareness", 1, 1],
        ["desktop_research_deep", "awareness", "consideration", 1, 1],
        ["mobile_tiktok_fast_track", "start", "awareness", 2, 2],
        ["mobile_tiktok_fast_track", "awareness", "consideration", 1, 1],
        ["mobile_tiktok_fast_track", "consideration", "decision", 1, 1],
    ]
    assert tables["time_to_convert"]["rows"] == [["mobile_tiktok_fast_track", 2, 315.0, 1, 0, 1, 0, 0]]
    assert tables["cross_device_share"]["rows"] == [["2026-11-10", 2, 1, 0.5], ["2026-11-11", 1, 0, 0.0]]
    assert tables["persona_mix"]["rows"] == [
        ["TechEarlyAdopter", 2, 2 / 3, 2, 1.0],
        ["Researcher", 1, 1 / 3, 0, 0.0],
    ]


def test_personalization_as_records(staff_api, rolled_up):
    body = get(staff_api, "personalization", site=rolled_up.pk, shape="records", **RANGE).json()

    assert body["tables"]["personalization_performance"] == [
        {
            "personalization_type": "content",
            "strategy": "viral_hook_replication",
            "applications": 2,
            "engagement_time": 40,
            "mean_engagement_time": 20.0,
            "conversions": 1,
            "conversion_rate": 0.5,
            "mean_confidence": 0.75,
        },
        {
            "personalization_type": "content",
            "strategy": "comparison_table",
            "applications": 1,
            "engagement_time": 12,
            "mean_engagement_time": 12.0,
            "conversions": 0,
            "conversion_rate": 0.0,
            "mean_confidence": None,
        },
    ]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"date_from": "2026-13-01"}, "date_from"),
        ({"date_from": "2026-11-12", "date_to": "2026-11-10"}, "date_from"),
        ({"device": "phone"}, "device"),
        ({"path": "nowhere"}, "path"),
        ({"site": "abc"}, "site"),
        ({"shape": "cubes"}, "shape"),
        # Found by the schema test (tests/platform/test_api_contract.py): each was a 500.
        ({"persona": "Tech\x00Adopter"}, "persona"),
        ({"site": "\u00b2"}, "site"),  # str.isdigit() holds for a superscript two; int() refuses it
        ({"date_to": "0001-01-05"}, "date_to"),  # its default date_from would fall before year 1
    ],
)
def test_bad_filters_answer_400_naming_the_field(staff_api, params, field):
    response = get(staff_api, "overview", **params)
    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_a_range_at_the_first_representable_day_is_answered(staff_api):
    response = get(staff_api, "overview", date_from="0001-01-01", date_to="0001-01-02")

    assert response.status_code == 200
    assert response.json()["filters"]["date_from"] == "0001-01-01"


def test_a_public_site_key_cannot_read_it(api):
    response = get(api, "overview", **RANGE)
    assert response.status_code == 403


def test_the_overview_tiles_and_funnel_count_the_same_converted_sessions(staff_api, site):
    # given: a session that bought (and so reached the conversion stage), one that only
    # signed up for e-mails (a conversion event, no conversion stage), one that browsed
    buyer = session(site, "buyer", at=DAY1)
    for stage in ("consideration", "decision", "conversion"):
        advance(buyer, stage)
    convert(buyer, "30.00", at=DAY1 + timedelta(minutes=3))
    convert(session(site, "signup", at=DAY1), "0", at=DAY1 + timedelta(minutes=1), type="email_signup")
    session(site, "browser", at=DAY1)
    rollups_update()

    # when
    tables = get(staff_api, "overview", site=site.pk, **RANGE).json()["tables"]

    # then: the tile's rate is the funnel's conversion share; the signup is counted apart
    [totals] = [
        dict(zip(tables["overview_totals"]["columns"], row, strict=True)) for row in tables["overview_totals"]["rows"]
    ]
    funnel = {row[0]: row for row in tables["funnel"]["rows"]}
    assert (totals["conversions"], totals["conversion_rate"]) == (1, 1 / 3)
    assert (funnel["conversion"][1], funnel["conversion"][2]) == (1, 1 / 3)
    assert (totals["sessions_with_any_conversion"], totals["conversion_events"]) == (2, 2)
    assert (totals["revenue"], totals["currency"]) == ("30.00", "EUR")
    assert tables["overview_timeseries"]["rows"][0] == ["2026-11-10", 3, 1, 1 / 3, "30.00"]
