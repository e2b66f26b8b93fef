"""The SDK on a shop page of its own origin, in headless Chromium against the real engine:
one request starts the session and fills the page's slot with the served variant, as text.
"""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from journeys.models import JourneySession, Touchpoint
from personalization.cue_text import format_ends_at
from personalization.models import Exposure, TriggerType
from personalization.services.scarcity.evidence import scarcity_evidence_refresh
from tests.browser.shop import sdk_page, slot_with_variants
from tests.personalization.scarcity_helpers import live_offer, make_rule

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

SVG = "image/svg+xml"
STYLE = """<style>
body { font-family: system-ui, sans-serif; margin: 0; background: #f4f2ee; color: #1f1d1a; }
header { display: flex; justify-content: space-between; padding: 18px 48px; background: #1f1d1a; color: #fff; }
header nav a { color: #fff; margin-left: 24px; text-decoration: none; }
.hero { display: flex; gap: 40px; align-items: center; margin: 32px 48px; padding: 32px; background: #fff;
        border-radius: 16px; box-shadow: 0 2px 12px rgba(0,0,0,.08); }
.hero img { width: 360px; height: 240px; border-radius: 12px; }
.hero h1 { font-size: 40px; margin: 0 0 12px; }
.hero p { font-size: 18px; color: #55504a; max-width: 520px; }
.cta { display: inline-block; padding: 12px 22px; background: #0a7d55; color: #fff; border-radius: 8px;
       text-decoration: none; font-weight: 600; }
.offer { margin: 0 48px; padding: 24px 32px; background: #fff; border-radius: 16px; }
.price { font-size: 24px; font-weight: 700; }
.cue { color: #b3261e; font-weight: 600; min-height: 1.2em; }
</style>"""


def picture(fill: str, label: str) -> str:
    return (
        "<svg xmlns='http://www.w3.org/2000/svg' width='360' height='240'>"
        f"<rect width='360' height='240' fill='{fill}'/>"
        "<circle cx='130' cy='120' r='46' fill='#fff'/><circle cx='230' cy='120' r='46' fill='#fff'/>"
        f"<text x='180' y='215' font-size='20' text-anchor='middle' fill='#fff' font-family='sans-serif'>{label}</text>"
        "</svg>"
    )


def shop_body(default_image: str) -> str:
    return f"""{STYLE}
<header><strong>Northwind Audio</strong><nav><a href="/">Shop</a><a href="/cart">Cart</a></nav></header>
<section class="hero" data-journey-slot="hero">
  <img data-journey-field="image" src="{default_image}" alt="Earbuds">
  <div>
    <h1 data-journey-field="headline">Wireless earbuds</h1>
    <p data-journey-field="body">Good sound for every day.</p>
    <a class="cta" href="/cart" data-journey-field="cta, href:cta_url">Add to cart</a>
  </div>
</section>
<section class="offer">
  <div>Wireless earbuds X2</div>
  <div class="price">49.90 EUR</div>
  <p class="cue" data-journey-cue="low_stock" data-journey-offer="A1"></p>
  <p class="cue" data-journey-cue="offer_deadline" data-journey-offer="A1"></p>
</section>"""


def test_the_session_starts_and_the_slot_shows_the_served_variant_as_one_request(
    shop, shop_site, people, sdk_src, new_page, screenshot
):
    # given: a hero slot with a default and a variant for everyone, and a true low-stock claim
    served = {
        "headline": "Hear every beat",
        "body": "Adaptive noise cancelling, 30 hours of battery.",
        "image": f"{shop.origin}/img/hero-b.svg",
        "cta": "Buy now",
        "cta_url": f"{shop.origin}/checkout?from=hero",
    }
    slot_with_variants(
        shop_site,
        people,
        "hero",
        {
            "hero-default": {"payload": {"headline": "Wireless earbuds"}, "is_default": True},
            "hero-b": {"payload": served},
        },
    )
    ends_at = (timezone.now() + timedelta(hours=2)).replace(microsecond=0)
    offer = live_offer(shop_site, people, sku="A1", stock=3, stock_at=timezone.now(), ends_at=ends_at)
    make_rule(shop_site, offer, TriggerType.LOW_STOCK, people, threshold=5)
    make_rule(shop_site, offer, TriggerType.OFFER_DEADLINE, people)
    scarcity_evidence_refresh(site_id=shop_site.pk)
    shop.page("/img/hero-default.svg", picture("#8a8580", "default"), SVG)
    shop.page("/img/hero-b.svg", picture("#0a7d55", "hero-b"), SVG)
    url = shop.page(
        "/",
        sdk_page(
            script_src=sdk_src,
            site_key=shop_site.public_key,
            title="Northwind Audio",
            body=shop_body(f"{shop.origin}/img/hero-default.svg"),
        ),
    )
    page = new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    api_posts = []
    page.on("request", lambda r: r.method == "POST" and api_posts.append(urlsplit(r.url).path))

    # when: a visitor comes from a TikTok campaign
    page.goto(url + "?utm_source=TikTok&utm_campaign=spring")
    page.wait_for_selector('[data-journey-slot="hero"][data-journey-variant="hero-b"]')
    page.wait_for_selector('[data-journey-cue] [data-journey-rule="low-stock"]')
    page.wait_for_selector("[data-journey-countdown]")

    # then: the slot shows the served variant's payload, the cue its validated message
    hero = page.locator('[data-journey-slot="hero"]')
    assert hero.locator("h1").text_content() == served["headline"]
    assert hero.locator("p").text_content() == served["body"]
    assert hero.locator("img").get_attribute("src") == served["image"]
    assert hero.locator("a").text_content() == served["cta"]
    assert hero.locator("a").get_attribute("href") == served["cta_url"]
    assert hero.evaluate("el => getComputedStyle(el).visibility") == "visible"
    assert page.text_content('[data-journey-cue="low_stock"]') == "Only 3 left"
    deadline = page.text_content('[data-journey-cue="offer_deadline"]')
    assert re.fullmatch(f"Offer ends {re.escape(format_ends_at(ends_at))} (01:59:[0-5][0-9]|02:00:00)", deadline)
    screenshot(page, "sdk-shop-page")

    # and: one request started the session and decided the slot (no separate /decide)
    assert [path for path in api_posts if path != "/api/v1/events"] == ["/api/v1/sessions"]
    session_id, visitor_id, screen = page.evaluate(
        "[journey.sessionId, journey.visitorId, `${screen.width}x${screen.height}`]"
    )
    session = JourneySession.objects.select_related("visitor").get(site=shop_site)
    assert (session.session_id, session.visitor.visitor_id) == (session_id, visitor_id)
    assert (session.device_type, session.device_screen, session.source, session.returning) == (
        "desktop",
        screen,
        "tiktok",
        False,
    )
    assert session.entry_point == {
        "source": "tiktok",
        "campaign": "spring",
        "url": url + "?utm_source=TikTok&utm_campaign=spring",
    }
    assert session.utm == {"utm_source": "TikTok", "utm_campaign": "spring"}
    assert session.visitor.consent_personalization is True
    assert list(
        Exposure.objects.filter(session=session).values_list("variant__key", "variant_version", "experiment")
    ) == [("hero-b", 1, None)]

    # and: the page view is delivered once the queue is flushed
    page.evaluate("journey.flush()")
    assert list(Touchpoint.objects.filter(session=session).values_list("type", "page_url", "page_title")) == [
        ("page_view", url + "?utm_source=TikTok&utm_campaign=spring", "Northwind Audio")
    ]
    assert errors == []


def test_a_payload_holding_html_is_shown_as_inert_text(shop, shop_site, people, sdk_src, new_page):
    # given: a variant whose texts hold markup and whose URLs are javascript:
    payload = {
        "headline": "<script>window.__pwned = 'script'</script>",
        "body": "<img src=x onerror=\"window.__pwned = 'onerror'\">",
        "image": "javascript:window.__pwned = 'image'",
        "cta": "<b>Buy</b>",
        "cta_url": "javascript:window.__pwned = 'link'",
    }
    slot_with_variants(
        shop_site,
        people,
        "hero",
        {
            "hero-default": {"payload": {"headline": "Wireless earbuds"}, "is_default": True},
            "hero-x": {"payload": payload},
        },
    )
    url = shop.page(
        "/",
        sdk_page(
            script_src=sdk_src,
            site_key=shop_site.public_key,
            body="""<section data-journey-slot="hero">
              <h1 data-journey-field="headline">Wireless earbuds</h1>
              <p data-journey-field="body">Good sound.</p>
              <img data-journey-field="image" src="/default.png" alt="">
              <a href="/cart" data-journey-field="cta, href:cta_url">Add to cart</a>
            </section>""",
        ),
    )
    page = new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(error))

    # when
    page.goto(url)
    page.wait_for_selector('[data-journey-slot="hero"][data-journey-variant="hero-x"]')

    # then: the raw strings as text, no element made from them, no URL taken that is not http(s)
    hero = page.locator('[data-journey-slot="hero"]')
    assert hero.locator("h1").text_content() == payload["headline"]
    assert hero.locator("p").text_content() == payload["body"]
    assert hero.locator("a").text_content() == payload["cta"]
    assert hero.evaluate("el => [...el.querySelectorAll('*')].map(child => child.tagName)") == ["H1", "P", "IMG", "A"]
    assert hero.locator("img").get_attribute("src") == "/default.png"
    assert hero.locator("a").get_attribute("href") == "/cart"
    assert page.evaluate("document.scripts.length") == 1  # the SDK's tag
    assert page.evaluate("window.__pwned === undefined") is True
    assert errors == []
