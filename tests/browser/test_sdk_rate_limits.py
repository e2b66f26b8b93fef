"""The SDK against an engine that rate-limits it: it honours 429's Retry-After (no call at all
until then, in every tab) instead of retrying on its own backoff, and keeps what it has not
delivered. Headless Chromium tells the engine it is driven by automation (navigator.webdriver).

The engine here is a uvicorn of this test's own (the shared one keeps the default limits),
allowing two calls per window from one address: the session start and one more.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from journeys.models import JourneySession, Touchpoint
from tests.browser.conftest import ARTIFACTS, _answers, _free_port
from tests.browser.shop import sdk_page
from tests.processes import database_url_of_the_test_database, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

WINDOW = 60
HERO = '<section data-journey-slot="hero"><h1 data-journey-field="headline">Earbuds</h1></section>'


@pytest.fixture
def limited_engine(django_db_setup):
    """The engine, allowing 2 browser calls per 60-second window from one address."""
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url_of_the_test_database(),
        "REDIS_URL": settings.REDIS_URL,
        "DB_CONN_MAX_AGE": "0",
        "CELERY_TASK_ALWAYS_EAGER": "true",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "RATE_LIMIT_ADDRESS_REQUESTS": "2",
        "RATE_LIMIT_WINDOW_SECONDS": str(WINDOW),
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    log_path = ARTIFACTS / "limited-engine.log"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", str(port)]
            + ["--lifespan", "off", "--log-level", "warning"],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: process.poll() is not None or _answers(f"{url}/healthz"), timeout=60)
        assert process.poll() is None, log_path.read_text(errors="replace")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def api_calls(page) -> list:
    calls = []
    page.on("request", lambda r: urlsplit(r.url).path.startswith("/api/v1/") and calls.append(r))
    return calls


def test_a_429_holds_every_call_until_retry_after_and_the_queue_is_kept(limited_engine, shop, shop_site, new_page):
    # given: at least 25 s left in the window, so the hold the test watches is the engine's
    if time.time() % WINDOW > WINDOW - 25:
        time.sleep(WINDOW - time.time() % WINDOW + 0.5)
    url = shop.page(
        "/", sdk_page(script_src=f"{limited_engine}/sdk/v1/journey.js", site_key=shop_site.public_key, body=HERO)
    )
    page = new_page()
    calls = api_calls(page)
    page.goto(url)
    session_id = page.evaluate("new Promise(resolve => journey.ready(j => resolve(j.sessionId)))")
    [start] = calls
    assert json.loads(start.post_data)["device"]["webdriver"] is True
    assert JourneySession.objects.get(session_id=session_id).automated == "headless:HeadlessChrome"

    # when: the second call goes, then a third is refused with 429 and Retry-After
    page.evaluate("journey.track('interaction', {interaction_type: 'click'}); journey.flush()")
    assert len(calls) == 2
    with page.expect_response(lambda r: r.status == 429) as refused:
        page.evaluate("() => { journey.track('interaction', {interaction_type: 'scroll'}); journey.flush(); }")
    retry_after = int(refused.value.headers["retry-after"])
    held_at = time.time()
    assert refused.value.json()["code"] == "rate_limited_address"

    # then: for the next seconds no call leaves the page, whatever the page asks:
    # flush, decide (rejected at once with status 429) and coming back online
    decided = page.evaluate("journey.decide(['hero']).then(() => 'resolved', error => error.status)")
    page.evaluate("window.dispatchEvent(new Event('online'))")
    page.wait_for_timeout(min(8, retry_after - 2) * 1000)
    assert decided == 429
    assert len(calls) == 3
    # the hold is the engine's Retry-After, in the shop's storage (every tab reads it)
    hold = page.evaluate(f"JSON.parse(localStorage.getItem('je:{shop_site.public_key}:h'))")
    assert abs(hold / 1000 - (held_at + retry_after)) < 2
    # and the refused touchpoint is still queued; those before it were stored
    assert page.evaluate("Object.keys(localStorage).filter(key => key.includes(':e:')).length") == 1
    stored = Touchpoint.objects.filter(session__session_id=session_id).values_list("type", "interaction_type")
    assert sorted(stored) == [("interaction", "click"), ("page_view", "")]
