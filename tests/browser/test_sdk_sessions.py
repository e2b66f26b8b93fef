"""Sessions across the shop's pages: later pages decide their slots without restarting the
session, a failed start is resent with the identical body, a session ends after the
engine's idle time, and calls made before the script loaded are not lost."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from journeys.models import IdempotencyConflict, JourneySession, Touchpoint
from personalization.models import Exposure
from tests.browser.shop import sdk_page, slot_with_variants

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

HERO = '<section data-journey-slot="hero"><h1 data-journey-field="headline">Earbuds</h1></section>'
CTA = '<section data-journey-slot="cta"><a href="/cart" data-journey-field="text">Add to cart</a></section>'
FILLED = '[data-journey-slot="{}"][data-journey-variant]'


@pytest.fixture
def slots(shop_site, people):
    slot_with_variants(shop_site, people, "hero", {"hero-b": {"payload": {"headline": "Hear every beat"}}})
    slot_with_variants(shop_site, people, "cta", {"cta-b": {"payload": {"text": "Buy now"}}})


def page_of(shop, shop_site, sdk_src, path: str, body: str, **attributes) -> str:
    return shop.page(path, sdk_page(script_src=sdk_src, site_key=shop_site.public_key, body=body, **attributes))


def test_a_later_page_decides_its_own_slots_in_the_same_session(shop, shop_site, slots, sdk_src, new_page):
    landing = page_of(shop, shop_site, sdk_src, "/", HERO)
    # a slot key the engine does not know yet is left with its default; the others are filled
    product = page_of(shop, shop_site, sdk_src, "/product", CTA + '<p data-journey-slot="later">Soon</p>')
    page = new_page()
    posts = []
    page.on("request", lambda r: r.method == "POST" and posts.append(urlsplit(r.url).path))

    page.goto(landing)
    page.wait_for_selector(FILLED.format("hero"))
    session_id = page.evaluate("journey.sessionId")
    page.goto(product)
    page.wait_for_selector(FILLED.format("cta"))
    page.evaluate("journey.flush()")

    assert page.evaluate("journey.sessionId") == session_id
    assert page.text_content('[data-journey-slot="cta"] a') == "Buy now"
    assert page.text_content('[data-journey-slot="later"]') == "Soon"
    assert [path for path in posts if path != "/api/v1/events"] == [
        "/api/v1/sessions",
        "/api/v1/decide",
        "/api/v1/decide",
    ]
    session = JourneySession.objects.get(site=shop_site)
    assert session.session_id == session_id
    assert list(Exposure.objects.filter(session=session).order_by("id").values_list("variant__key", flat=True)) == [
        "hero-b",
        "cta-b",
    ]
    assert list(Touchpoint.objects.filter(session=session).order_by("sequence").values_list("page_url", flat=True)) == [
        landing,
        product,
    ]
    assert IdempotencyConflict.objects.count() == 0


def test_a_session_start_that_failed_is_resent_identically_before_anything_else(
    shop, shop_site, slots, sdk_src, new_page
):
    url = page_of(shop, shop_site, sdk_src, "/", HERO)
    page = new_page()
    page.route("**/api/v1/sessions?*", lambda route: route.abort())

    # when: the start fails, the visitor reloads while it still fails, then the engine is reachable
    with page.expect_event("requestfailed", lambda r: urlsplit(r.url).path == "/api/v1/sessions"):
        page.goto(url)
    session_id = page.evaluate("journey.sessionId")
    with page.expect_event("requestfailed", lambda r: urlsplit(r.url).path == "/api/v1/sessions"):
        page.reload()
    assert page.text_content("h1") == "Earbuds"
    assert JourneySession.objects.count() == 0
    page.unroute("**/api/v1/sessions?*")
    page.evaluate("journey.flush()")

    # then: one session, started by the first page's body (no conflict), its events after it
    session = JourneySession.objects.get(site=shop_site)
    assert session.session_id == session_id
    assert page.evaluate("journey.sessionId") == session_id
    assert IdempotencyConflict.objects.count() == 0
    assert Touchpoint.objects.filter(session=session).count() == 2
    page.wait_for_selector(FILLED.format("hero"))  # the late answer fills the slot
    assert page.text_content("h1") == "Hear every beat"


def test_after_the_idle_time_a_new_session_starts_for_the_returning_visitor(shop, shop_site, slots, sdk_src, new_page):
    url = page_of(shop, shop_site, sdk_src, "/", HERO)
    page = new_page()
    page.goto(url)
    page.wait_for_selector(FILLED.format("hero"))
    first, visitor_id = page.evaluate("[journey.sessionId, journey.visitorId]")

    # when: the last activity was longer ago than the engine's idle time
    page.evaluate(
        """key => {
          const stored = JSON.parse(localStorage.getItem(key));
          localStorage.setItem(key, JSON.stringify({...stored, t: Date.now() - stored.i * 1000 - 1000}));
        }""",
        f"je:{shop_site.public_key}:s",
    )
    page.reload()
    page.wait_for_selector(FILLED.format("hero"))

    # then
    second = page.evaluate("journey.sessionId")
    assert second != first
    sessions = JourneySession.objects.filter(site=shop_site).select_related("visitor").order_by("id")
    assert [(s.session_id, s.visitor.visitor_id, s.returning) for s in sessions] == [
        (first, visitor_id, False),
        (second, visitor_id, True),
    ]
    assert page.evaluate(f"JSON.parse(localStorage.getItem('je:{shop_site.public_key}:s')).i") == 1800


def test_calls_queued_before_the_script_loaded_are_run(shop, shop_site, slots, sdk_src, new_page):
    stub = (
        "<script>window.journey = window.journey || [];"
        " journey.push(['track', 'interaction', {interaction_type: 'newsletter_view'}]);</script>"
    )
    url = page_of(shop, shop_site, sdk_src, "/", stub + HERO)
    page = new_page()
    page.goto(url)
    page.wait_for_selector(FILLED.format("hero"))
    page.evaluate("journey.flush()")

    rows = Touchpoint.objects.filter(site=shop_site).order_by("sequence")
    assert list(rows.values_list("type", "interaction_type")) == [("page_view", ""), ("interaction", "newsletter_view")]


def test_stage_moves_the_session_and_identify_needs_cross_device_consent(shop, shop_site, slots, sdk_src, new_page):
    url = page_of(shop, shop_site, sdk_src, "/", HERO)
    page = new_page()
    page.goto(url)
    page.wait_for_selector(FILLED.format("hero"))
    session_id = page.evaluate("journey.sessionId")

    answer = page.evaluate(
        "journey.stage('consideration', {scroll_depth: 0.8, engagement_score: 0.7}, {trigger_event: 'gallery'})"
    )
    refusal = page.evaluate(
        "journey.identify('ann@example.com').then(() => null, error => [error.status, error.body.code])"
    )
    page.evaluate("journey.consent({cross_device: true})")
    linked = page.evaluate("journey.identify('ann@example.com', 'email')")

    assert answer["journey_state"]["current_stage"] == "consideration"
    session = JourneySession.objects.get(site=shop_site)
    assert list(session.transitions.values_list("to_stage", "trigger_event", "engagement")) == [
        ("awareness", "session_start", {}),
        ("consideration", "gallery", {"scroll_depth": 0.8, "engagement_score": 0.7}),
    ]
    assert refusal == [403, "consent_required"]
    assert (linked["sessions"], linked["device_sequence"]) == ([session_id], ["desktop"])
    session.refresh_from_db()
    assert session.cross_device_link is not None
