"""Consent on the shop page: without personalization consent (the tag says so, or the browser
sends Global Privacy Control) the visitor gets the experiment's control and the SDK sends no
behavioural data; a visitor who consents is in the experiment."""

from __future__ import annotations

import pytest

from journeys.models import JourneySession, Touchpoint
from personalization.models import Assignment, Experiment, Exposure
from tests.browser.shop import sdk_page, slot_with_variants
from tests.personalization.helpers import approved, created

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

HERO = '<section data-journey-slot="hero"><h1 data-journey-field="headline">Wireless earbuds</h1></section>'
GPC = "Object.defineProperty(navigator, 'globalPrivacyControl', {get: () => true})"


@pytest.fixture
def experiment(shop_site, people):
    """hero-test: control hero-a, treatment hero-b with all the weight, so a consenting visitor sees hero-b."""
    variants = slot_with_variants(
        shop_site,
        people,
        "hero",
        {
            "hero-a": {"payload": {"headline": "Control headline"}, "is_default": True},
            "hero-b": {"payload": {"headline": "Treatment headline"}},
        },
    )
    experiment = created(
        Experiment(site=shop_site, key="hero-test", name="Hero test", slot=variants["hero-a"].slot),
        people,
        arms=[
            {"variant": variants["hero-a"].pk, "is_control": True, "weight": 0.0},
            {"variant": variants["hero-b"].pk, "is_control": False, "weight": 1.0},
        ],
    )
    return approved(experiment, people)


def visit(new_page, url: str, *, init_script: str | None = None):
    """A new visitor's page at ``url``, once its slot is decided; the page and its console messages."""
    page = new_page()
    messages = []
    page.on("console", lambda message: messages.append((message.type, message.text)))
    if init_script:
        page.add_init_script(init_script)
    page.goto(url)
    page.wait_for_selector('[data-journey-slot="hero"][data-journey-variant]')
    return page, messages


def test_a_consenting_visitor_is_in_the_experiment(shop, shop_site, experiment, sdk_src, new_page):
    url = shop.page("/", sdk_page(script_src=sdk_src, site_key=shop_site.public_key, body=HERO))

    page, _ = visit(new_page, url + "?utm_source=news")
    page.evaluate("journey.flush()")

    assert page.get_attribute('[data-journey-slot="hero"]', "data-journey-variant") == "hero-b"
    assert page.text_content("h1") == "Treatment headline"
    session = JourneySession.objects.get(site=shop_site)
    assert list(Exposure.objects.filter(session=session).values_list("variant__key", "experiment__key")) == [
        ("hero-b", "hero-test")
    ]
    assert list(Touchpoint.objects.filter(session=session).values_list("type", flat=True)) == ["page_view"]


@pytest.mark.parametrize("denied_by", ["data-consent", "global-privacy-control"])
def test_without_consent_the_visitor_gets_the_control_and_no_behavioural_data_is_sent(
    shop, shop_site, experiment, sdk_src, new_page, denied_by
):
    # given: the tag starts without consent, or the browser sends GPC
    attributes = {"consent": "denied"} if denied_by == "data-consent" else {}
    url = shop.page("/", sdk_page(script_src=sdk_src, site_key=shop_site.public_key, body=HERO, **attributes))

    # when: a visitor from a campaign comes, interacts, and the shop reports a stage move
    page, messages = visit(
        new_page,
        url + "?utm_source=tiktok&utm_campaign=spring&gclid=abc",
        init_script=GPC if denied_by == "global-privacy-control" else None,
    )
    outcomes = page.evaluate(
        """async () => [
          journey.track("interaction", {interaction_type: "click"}),
          journey.track("interaction", {interaction_type: "click"}),
          await journey.stage("consideration", {engagement_score: 0.9}),
          await journey.flush(),
        ]"""
    )

    # then: the control, from the engine
    assert page.get_attribute('[data-journey-slot="hero"]', "data-journey-variant") == "hero-a"
    assert page.text_content("h1") == "Control headline"
    assert outcomes == [None, None, None, None]
    assert [text for kind, text in messages if kind == "info"] == [
        "journey: no personalization consent, track() sends nothing"
    ]
    # and: the session holds what the control needs, and no more
    session = JourneySession.objects.select_related("visitor").get(site=shop_site)
    assert session.visitor.consent_personalization is False
    assert (session.device_type, session.device_screen, session.source, session.current_stage) == (
        "desktop",
        "",
        "tiktok",
        "awareness",
    )
    assert session.entry_point == {"source": "tiktok", "campaign": "spring", "url": f"{shop.origin}/"}
    assert (session.utm, session.referrer, session.intent_signals, session.device_fingerprint_hash) == ({}, {}, {}, "")
    assert list(Exposure.objects.filter(session=session).values_list("variant__key", "experiment")) == [
        ("hero-a", None)
    ]
    assert Assignment.objects.count() == 0
    assert Touchpoint.objects.count() == 0
    assert page.evaluate("Object.keys(localStorage).filter(key => key.includes(':e:')).length") == 0


def test_consent_given_on_the_page_personalizes_it_and_starts_tracking(shop, shop_site, experiment, sdk_src, new_page):
    url = shop.page("/", sdk_page(script_src=sdk_src, site_key=shop_site.public_key, body=HERO, consent="denied"))
    page, _ = visit(new_page, url)
    assert page.text_content("h1") == "Control headline"

    # when: the visitor accepts the shop's consent banner
    answer = page.evaluate("journey.consent({personalization: true})")
    page.wait_for_selector('[data-journey-slot="hero"][data-journey-variant="hero-b"]')
    event_id = page.evaluate("journey.track('interaction', {interaction_type: 'click'})")
    page.evaluate("journey.flush()")

    # then
    visitor_id = page.evaluate("journey.visitorId")
    assert answer == {"visitor_id": visitor_id, "personalization": True, "cross_device": False}
    assert page.text_content("h1") == "Treatment headline"
    session = JourneySession.objects.select_related("visitor").get(site=shop_site)
    assert session.visitor.consent_personalization is True
    assert list(Exposure.objects.filter(session=session).order_by("id").values_list("variant__key", flat=True)) == [
        "hero-a",
        "hero-b",
    ]
    assert [str(e) for e in Touchpoint.objects.filter(session=session).values_list("event_id", flat=True)] == [event_id]

    # and: the choice is remembered on the next page, over the tag's data-consent="denied"
    page.reload()
    page.wait_for_selector('[data-journey-slot="hero"][data-journey-variant="hero-b"]')
    assert JourneySession.objects.filter(site=shop_site).count() == 1
