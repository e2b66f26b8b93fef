"""Delivery of the SDK's touchpoints and conversions: exactly once in PostgreSQL through a
normal flush, a navigation away (beacon on pagehide) and an offline spell with a reload.

At-least-once in the browser (the same event ids are resent until a fetch is
acknowledged), exactly-once in the engine (idempotent on the event id).
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest

from journeys.models import ConversionEvent, JourneySession, Touchpoint
from tests.browser.shop import sdk_page, slot_with_variants
from tests.processes import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

HERO = '<section data-journey-slot="hero"><h1 data-journey-field="headline">Earbuds</h1></section>'
AWAY = "<!doctype html><title>Elsewhere</title><p>No SDK on this page.</p>"
# Playwright cannot see or intercept a beacon sent while a page unloads (the browser sends
# it after the page is gone), nor does Chromium's request blocking apply to it. So every
# page gets this spy: it logs each sendBeacon call in sessionStorage (which outlives the
# page in its tab), and while sessionStorage.offline is set it refuses, as a browser
# whose beacon cannot go out; either way the SDK keeps the events until a fetch is
# acknowledged.
BEACON_SPY = """(() => {
  const send = navigator.sendBeacon.bind(navigator);
  navigator.sendBeacon = (url, data) => {
    const offline = sessionStorage.getItem("offline") === "1";
    const log = JSON.parse(sessionStorage.getItem("beacons") || "[]");
    log.push({url: String(url), type: data.type, offline});
    sessionStorage.setItem("beacons", JSON.stringify(log));
    return offline ? false : send(url, data);
  };
})()"""
BEACONS = "JSON.parse(sessionStorage.getItem('beacons') || '[]')"
QUEUED_KEYS = "() => Object.keys(localStorage).filter(key => /:(e|c|p):/.test(key)).length"


def ready(page) -> str:
    """Wait until the SDK has started (or resumed) its session on the engine; its id."""
    page.wait_for_function("() => window.journey && window.journey.version")
    return page.evaluate("new Promise(resolve => journey.ready(j => resolve(j.sessionId)))")


def track(page, count: int, **props) -> list[str]:
    """``count`` interactions tracked at once; their event ids."""
    return page.evaluate(
        "([count, props]) => Array.from({length: count}, (_, n) => journey.track('interaction', {...props, n}))",
        [count, props],
    )


def stored_ids(site) -> Counter:
    return Counter(
        str(event_id) for event_id in Touchpoint.objects.filter(site=site).values_list("event_id", flat=True)
    )


def fetches_refused(route) -> None:
    """Aborts the SDK's fetches (the engine seems unreachable to them); beacons pass."""
    if route.request.resource_type == "fetch":
        route.abort()
    else:
        route.continue_()


@pytest.fixture
def open_shop(shop, shop_site, people, sdk_src, new_page):
    """``open_shop(**script attributes)``: a fresh visitor's page on the shop with a hero slot, its session started."""
    slot_with_variants(shop_site, people, "hero", {"hero-default": {"payload": {"headline": "Hi"}, "is_default": True}})
    shop.page("/away", AWAY)

    def open_page(**attributes):
        url = shop.page(
            "/",
            sdk_page(
                script_src=sdk_src,
                site_key=shop_site.public_key,
                body=HERO + '<a id="away" href="/away">away</a>',
                **attributes,
            ),
        )
        page = new_page()
        page.add_init_script(BEACON_SPY)
        page.goto(url)
        ready(page)
        return page

    return open_page


def test_events_are_stored_once_through_a_flush_and_when_the_batch_is_full(open_shop, shop_site):
    page = open_shop(batch_size=5)
    session_id = page.evaluate("journey.sessionId")

    # when: 4 interactions join the page view: a batch of 5, sent without a flush
    first = track(page, 4, interaction_type="click")
    assert wait_for(lambda: Touchpoint.objects.filter(site=shop_site).count() == 5, timeout=20)

    # and: 2 more, sent by flush()
    second = track(page, 2, interaction_type="click", sku="A1")
    page.evaluate("journey.flush()")

    # then: every event once, with what was tracked
    ids = stored_ids(shop_site)
    assert set(ids.values()) == {1}
    assert set(first + second) < set(ids)
    assert len(ids) == 7
    rows = Touchpoint.objects.filter(site=shop_site, session__session_id=session_id)
    assert Counter(rows.values_list("type", flat=True)) == {"page_view": 1, "interaction": 6}
    last = rows.get(event_id=second[1])
    assert (last.interaction_type, last.interaction_data, last.page_url) == (
        "click",
        {"sku": "A1", "n": 1},
        page.url,
    )
    assert page.evaluate(QUEUED_KEYS) == 0


def test_events_tracked_right_before_a_navigation_arrive_by_beacon_once(open_shop, shop, shop_site, asgi_server):
    page = open_shop()
    page.evaluate("journey.flush()")  # the page view
    page.route("**/api/v1/events**", fetches_refused)  # only a beacon can deliver now

    # when: the visitor clicks away right after three interactions
    ids = track(page, 3, interaction_type="add_to_cart")
    page.click("#away")
    page.wait_for_url(shop.origin + "/away")

    # then: the pagehide beacon delivered them: each once
    assert wait_for(lambda: len(stored_ids(shop_site)) == 4, timeout=20)
    assert page.evaluate(BEACONS) == [
        {
            "url": f"{asgi_server.url}/api/v1/events?site_key={shop_site.public_key}",
            "type": "text/plain;charset=utf-8",
            "offline": False,
        }
    ]
    ids_stored = stored_ids(shop_site)
    assert all(ids_stored[event_id] == 1 for event_id in ids)

    # and: the next page of the shop resends them (a beacon is never acknowledged): duplicates, stored once
    page.unroute("**/api/v1/events**")
    page.goto(shop.origin + "/")
    ready(page)
    page.evaluate("journey.flush()")
    assert page.evaluate(QUEUED_KEYS) == 0
    ids_stored = stored_ids(shop_site)
    assert set(ids_stored.values()) == {1}
    assert len(ids_stored) == 5  # two page views, three interactions
    assert JourneySession.objects.filter(site=shop_site).count() == 1


def test_events_of_an_offline_spell_with_a_reload_are_stored_once_when_the_engine_is_back(open_shop, shop_site):
    page = open_shop()
    offline = []
    page.route("**/api/v1/events**", lambda route: (offline.append(route.request.url), route.abort()))
    page.evaluate("sessionStorage.setItem('offline', '1')")

    # when: the events cannot be sent, the visitor reloads, tracks more, then the network is back
    before = track(page, 3, interaction_type="click")
    with page.expect_event("requestfailed", lambda r: "/api/v1/events" in r.url):
        page.evaluate("void journey.flush()")
    page.reload()
    ready(page)
    after = track(page, 2, interaction_type="click")
    with page.expect_event("requestfailed", lambda r: "/api/v1/events" in r.url):
        page.evaluate("void journey.flush()")
    assert Touchpoint.objects.filter(site=shop_site).count() == 0
    assert page.evaluate(QUEUED_KEYS) == 7
    page.unroute("**/api/v1/events**")
    page.evaluate("sessionStorage.removeItem('offline')")
    page.evaluate("journey.flush()")

    # then: none lost, none twice
    ids = stored_ids(shop_site)
    assert set(ids.values()) == {1}
    assert set(before + after) < set(ids)
    assert len(ids) == 7  # two page views
    assert len(offline) >= 2
    beacons = page.evaluate(BEACONS)
    assert len(beacons) >= 1  # the reload's, refused
    assert {beacon["offline"] for beacon in beacons} == {True}
    assert page.evaluate(QUEUED_KEYS) == 0


def test_convert_answers_the_attribution_and_stores_one_conversion(open_shop, shop_site):
    page = open_shop()
    session = JourneySession.objects.get(site=shop_site)

    answer = page.evaluate(
        "journey.convert({type: 'purchase', value: 49.9, currency: 'EUR', product: {sku: 'A1'},"
        " funnel_step: 'checkout'})"
    )

    conversion = ConversionEvent.objects.get(site=shop_site)
    assert answer["conversion_id"] == conversion.pk
    assert answer["event_id"] == str(conversion.event_id)
    assert answer["duplicate"] is False
    assert [v["variant"] for v in answer["attribution"]["variants"]] == ["hero-default"]
    assert answer["attribution"] == conversion.attribution
    assert (conversion.session_id, conversion.type, conversion.value, conversion.currency, conversion.product) == (
        session.pk,
        "purchase",
        Decimal("49.90"),
        "EUR",
        {"sku": "A1"},
    )
    assert conversion.funnel_step == "checkout"
    assert page.evaluate("Object.keys(localStorage).filter(key => key.includes(':c:')).length") == 0


def test_a_conversion_made_right_before_leaving_arrives_by_beacon_once(open_shop, shop, shop_site, asgi_server):
    page = open_shop()
    session_id = page.evaluate("journey.flush().then(() => journey.sessionId)")  # the page view is sent
    page.route("**/conversions**", fetches_refused)

    # when: the fetch fails (the Promise says so), and the visitor leaves at once
    outcome = page.evaluate("journey.convert({type: 'email_signup'}).then(() => 'sent', error => error.message)")
    assert outcome == "journey: engine unreachable, conversion queued"
    page.click("#away")
    page.wait_for_url(shop.origin + "/away")

    # then: the beacon stored it; the next page's resend is a duplicate
    assert wait_for(lambda: ConversionEvent.objects.filter(site=shop_site).count() == 1, timeout=20)
    assert page.evaluate(BEACONS) == [
        {
            "url": f"{asgi_server.url}/api/v1/sessions/{session_id}/conversions?site_key={shop_site.public_key}",
            "type": "text/plain;charset=utf-8",
            "offline": False,
        }
    ]
    page.unroute("**/conversions**")
    page.goto(shop.origin + "/")
    ready(page)
    page.evaluate("journey.flush()")
    assert page.evaluate(QUEUED_KEYS) == 0
    assert list(ConversionEvent.objects.filter(site=shop_site).values_list("type", flat=True)) == ["email_signup"]
