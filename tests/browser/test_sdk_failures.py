"""When the engine cannot serve the page, the page keeps its default content and works:
an origin the site does not allow (nothing stored), an engine that is down, an engine that hangs.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import pytest

from journeys.services.sites import site_create
from personalization.models import Exposure
from tests.browser.shop import sdk_page, slot_with_variants
from tests.journeys.helpers import row_counts

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

HERO = """<section data-journey-slot="hero">
  <h1 data-journey-field="headline">Wireless earbuds</h1>
  <a href="/cart" data-journey-field="cta">Add to cart</a>
</section>"""
# The moment the SDK's anti-flicker style leaves the page, against the page's clock.
REVEAL_PROBE = """(() => {
  new MutationObserver((changes, observer) => {
    for (const change of changes) for (const node of change.removedNodes) {
      if (node.tagName === "STYLE" && node.textContent.includes("data-journey-slot")) {
        window.__revealedAt = performance.now();
        observer.disconnect();
      }
    }
  }).observe(document, {childList: true, subtree: true});
})()"""
VISIBLE = "() => getComputedStyle(document.querySelector('[data-journey-slot]')).visibility === 'visible'"


def empty_tables() -> dict[str, int]:
    return {**dict.fromkeys(row_counts(), 0), "Exposure": 0}


def tables() -> dict[str, int]:
    return {**row_counts(), "Exposure": Exposure.objects.count()}


def collect_errors(page) -> list:
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    return errors


def test_a_page_on_an_origin_its_site_does_not_allow_stores_nothing_and_keeps_its_content(
    shop, people, sdk_src, new_page
):
    # given: the site allows only its real shop; another site allows this origin, which
    # does not make it one of this site's
    site = site_create(name="Real shop", domain="real.example", allowed_origins=["https://real.example"])
    site_create(name="Neighbour", domain="neighbour.example", allowed_origins=[shop.origin])
    slot_with_variants(site, people, "hero", {"hero-b": {"payload": {"headline": "Hear every beat"}}})
    url = shop.page("/", sdk_page(script_src=sdk_src, site_key=site.public_key, body=HERO))
    page = new_page()
    errors = collect_errors(page)
    blocked = []
    page.on("console", lambda m: "blocked by CORS policy" in m.text and blocked.append(m.text))

    # when
    with page.expect_event("requestfailed", lambda r: urlsplit(r.url).path == "/api/v1/sessions"):
        page.goto(url)
    page.wait_for_function(VISIBLE)

    # then: the call reached the engine and came back without CORS headers (the engine's
    # 403 origin_not_allowed, which the page cannot read); the page shows its own content
    assert "No 'Access-Control-Allow-Origin' header is present on the requested resource" in blocked[0]
    assert not any("preflight" in text for text in blocked)
    assert page.text_content("h1") == "Wireless earbuds"
    assert page.get_attribute('[data-journey-slot="hero"]', "data-journey-variant") is None
    assert page.evaluate("journey.track('interaction', {interaction_type: 'click'})") is not None
    assert tables() == empty_tables()
    assert errors == []


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_down_engine_leaves_the_default_content_shown_at_once_and_no_error(shop, shop_site, sdk_src, new_page):
    # given: the script loads from the engine, but the API host is down (a closed port)
    url = shop.page(
        "/",
        sdk_page(
            script_src=sdk_src,
            site_key=shop_site.public_key,
            body=HERO,
            api_host=f"http://127.0.0.1:{closed_port()}",
            slot_timeout=10_000,
        ),
    )
    page = new_page()
    errors = collect_errors(page)

    # when: the page loads, and the shop calls the SDK as usual
    page.goto(url)
    # revealed on the failure, long before the 10 s slot timeout
    page.wait_for_function(VISIBLE, timeout=5_000)
    outcomes = page.evaluate(
        """async () => {
          const id = journey.track("interaction", {interaction_type: "click"});
          const settled = promise => promise.then(() => "resolved", error => error.constructor.name);
          const decided = await settled(journey.decide(["hero"]));
          return [typeof id, decided, await settled(journey.convert({type: "purchase"}))];
        }"""
    )

    # then: default content, the public Promises reject for the caller, nothing uncaught
    assert page.text_content("h1") == "Wireless earbuds"
    assert page.text_content("a") == "Add to cart"
    assert outcomes == ["string", "TypeError", "Error"]
    assert errors == []
    assert tables() == empty_tables()


def test_a_hanging_engine_reveals_the_default_content_at_the_slot_timeout(shop, shop_site, sdk_src, new_page):
    # given: an API host that accepts connections and never answers
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = shop.page(
            "/",
            sdk_page(
                script_src=sdk_src,
                site_key=shop_site.public_key,
                body=HERO,
                api_host=f"http://127.0.0.1:{silent.getsockname()[1]}",
                slot_timeout=300,
            ),
        )
        page = new_page()
        errors = collect_errors(page)
        page.add_init_script(REVEAL_PROBE)

        # when
        page.goto(url)
        page.wait_for_function(VISIBLE)

        # then: hidden for the slot timeout only, then the default content, while the call still hangs
        revealed_at, script_loaded_at = page.evaluate(
            "[window.__revealedAt, performance.getEntriesByName(document.querySelector('script').src)[0].responseEnd]"
        )
        assert revealed_at - script_loaded_at >= 300
        assert page.text_content("h1") == "Wireless earbuds"
        assert page.evaluate("journey.sessionId") is not None
        assert errors == []
