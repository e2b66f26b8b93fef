"""Cues on the shop page: the validated message as text, and a countdown that ticks on the
engine's clock to the offer's absolute end and stops there."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from django.utils import timezone

from personalization.cue_text import format_ends_at
from personalization.models import TriggerType
from personalization.services.scarcity.evidence import scarcity_evidence_refresh
from tests.browser.shop import sdk_page
from tests.personalization.scarcity_helpers import live_offer, make_rule

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

COUNTDOWN = "document.querySelector('[data-journey-countdown]')"


def seconds(text: str) -> int:
    hours, minutes, secs = (int(part) for part in text.split(":"))
    return hours * 3600 + minutes * 60 + secs


def test_the_countdown_shows_the_time_left_to_the_offers_end_ticks_and_stops_at_it(
    shop, shop_site, people, sdk_src, new_page, screenshot
):
    # given: an offer that ends in five minutes, and an approved deadline rule on it
    ends_at = (timezone.now() + timedelta(minutes=5)).replace(microsecond=0)
    offer = live_offer(shop_site, people, sku="A1", ends_at=ends_at)
    make_rule(shop_site, offer, TriggerType.OFFER_DEADLINE, people)
    scarcity_evidence_refresh(site_id=shop_site.pk)
    url = shop.page(
        "/product",
        sdk_page(
            script_src=sdk_src,
            site_key=shop_site.public_key,
            body="""<h1>Wireless earbuds X2</h1>
            <p class="cue" data-journey-cue="offer_deadline" data-journey-offer="A1">Limited offer</p>
            <p class="cue" data-journey-cue="low_stock">No stock cue</p>
            <p class="cue" data-journey-cue data-journey-offer="B2">Other offer</p>""",
        ),
    )
    page = new_page()
    page.clock.install()  # the page's clock runs on its own; the test can jump it forward

    # when
    page.goto(url)
    page.wait_for_selector("[data-journey-countdown]")

    # then: the claim's text, and the time left to ends_at (whole seconds, rounded up)
    cue = page.locator('[data-journey-cue="offer_deadline"] [data-journey-rule="offer-deadline"]')
    assert cue.get_attribute("data-journey-trigger") == "offer_deadline"
    text, now_ms = page.evaluate(f"[{COUNTDOWN}.textContent, Date.now()]")
    left = math.ceil((ends_at.timestamp() * 1000 - now_ms) / 1000)
    assert abs(seconds(text) - left) <= 1
    assert 280 <= seconds(text) <= 300
    assert cue.text_content() == f"Offer ends {format_ends_at(ends_at)} {text}"
    # only the element asking for that trigger and offer shows it
    assert page.text_content('[data-journey-cue="low_stock"]') == "No stock cue"
    assert page.text_content('[data-journey-offer="B2"]') == "Other offer"
    screenshot(page, "sdk-countdown")

    # and: it ticks every second
    page.wait_for_function(f"shown => {COUNTDOWN}.textContent !== shown", arg=text)
    assert seconds(page.evaluate(f"{COUNTDOWN}.textContent")) == seconds(text) - 1

    # and: at the end the countdown cue goes, and the element shows its default again
    page.clock.fast_forward(int(ends_at.timestamp() * 1000 - page.evaluate("Date.now()")) + 1000)
    page.wait_for_function("() => !document.querySelector('[data-journey-rule]')")
    assert page.text_content('[data-journey-cue="offer_deadline"]') == "Limited offer"
