"""Sessions of crawlers, headless browsers and floods are marked when they start, with the reason."""

from __future__ import annotations

import time

import pytest

from core.rate_limits import counter
from journeys.automation import automated_reason
from journeys.models import JourneySession

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
CUBOT_PHONE = (
    "Mozilla/5.0 (Linux; Android 10; CUBOT NOTE 20) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Mobile Safari/537.36"
)
GOOGLEBOT = (
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Googlebot/2.1; "
    "+http://www.google.com/bot.html) Chrome/131.0.6778.69 Safari/537.36"
)
HEADLESS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36"
)


@pytest.mark.parametrize(
    ("user_agent", "reason"),
    [
        (GOOGLEBOT, "crawler:Googlebot"),
        ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "crawler:bingbot"),
        ("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", "crawler:AhrefsBot"),
        ("Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)", "crawler:SemrushBot"),
        ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2)", "crawler:GPTBot"),
        ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", "crawler:facebookexternalhit"),
        ("Mozilla/5.0 (compatible; SomeNewBot/0.1)", "crawler:SomeNewBot"),
        ("acme-site-crawler v2", "crawler:acme-site-crawler"),
        (HEADLESS, "headless:HeadlessChrome"),
        (
            "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1",
            "headless:PhantomJS",
        ),
        ("Mozilla/5.0 (Linux; Android 11) Chrome/120.0 Mobile Safari/537.36 Chrome-Lighthouse", "headless:Lighthouse"),
        (CHROME, ""),
        (SAFARI_IPHONE, ""),
        (FIREFOX, ""),
        (CUBOT_PHONE, ""),
        ("", ""),
    ],
)
def test_known_crawlers_and_headless_browsers_are_told_from_people_by_their_user_agent(user_agent, reason):
    assert automated_reason(user_agent=user_agent) == reason


def test_a_browser_driven_by_automation_is_marked_whatever_its_user_agent():
    assert automated_reason(user_agent=CHROME, webdriver=True) == "webdriver"
    assert automated_reason(user_agent=GOOGLEBOT, webdriver=True) == "crawler:Googlebot"
    assert automated_reason(user_agent=CHROME, flooding=True) == "flood"


def start_session(api, session_id: str, *, user_agent: str, device: dict | None = None, address="198.51.100.7"):
    body = {"session_id": session_id, "visitor_id": f"v-{session_id}", "device": device or {"type": "desktop"}}
    return api.post("/api/v1/sessions", body, format="json", HTTP_USER_AGENT=user_agent, REMOTE_ADDR=address)


@pytest.mark.django_db
def test_a_session_start_marks_the_session_with_the_reason(api):
    for session_id, user_agent, device in (
        ("s-person", CHROME, None),
        ("s-google", GOOGLEBOT, None),
        ("s-headless", HEADLESS, None),
        ("s-driven", CHROME, {"type": "desktop", "webdriver": True}),
        ("s-not-driven", CHROME, {"type": "desktop", "webdriver": False}),
    ):
        assert start_session(api, session_id, user_agent=user_agent, device=device).status_code == 201

    assert dict(JourneySession.objects.values_list("session_id", "automated")) == {
        "s-person": "",
        "s-google": "crawler:Googlebot",
        "s-headless": "headless:HeadlessChrome",
        "s-driven": "webdriver",
        "s-not-driven": "",
    }


@pytest.mark.django_db
def test_a_webdriver_flag_that_is_not_a_boolean_is_refused_by_name(api):
    response = start_session(api, "s-1", user_agent=CHROME, device={"type": "desktop", "webdriver": "maybe"})

    assert response.status_code == 400
    assert response.json() == {"device": {"webdriver": ["Must be a valid boolean."]}}
    assert not JourneySession.objects.exists()


@pytest.mark.django_db
def test_an_address_over_its_limit_is_a_flood_before_and_after_for_an_hour(settings, api, site, monkeypatch):
    counter.forget()
    settings.RATE_LIMIT_ADDRESS_REQUESTS = 2
    for session_id in ("s-flood-1", "s-flood-2"):
        assert start_session(api, session_id, user_agent=CHROME, address="203.0.113.66").status_code == 201
    assert start_session(api, "s-person", user_agent=CHROME, address="198.51.100.1").status_code == 201
    assert set(JourneySession.objects.values_list("automated", flat=True)) == {""}

    assert start_session(api, "s-flood-3", user_agent=CHROME, address="203.0.113.66").status_code == 429
    # the next window: accepted again, but still the flood's
    real_time = time.time
    monkeypatch.setattr("core.rate_limits.time.time", lambda: real_time() + settings.RATE_LIMIT_WINDOW_SECONDS)
    assert start_session(api, "s-flood-4", user_agent=CHROME, address="203.0.113.66").status_code == 201

    assert dict(JourneySession.objects.values_list("session_id", "automated")) == {
        "s-flood-1": "flood",
        "s-flood-2": "flood",
        "s-flood-4": "flood",
        "s-person": "",
    }
    counter.forget()
