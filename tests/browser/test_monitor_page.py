"""The live monitor page in headless Chromium against the real ASGI server: an API call's
event arrives in the page, and a gap in the sequence makes the page reload the snapshot."""

from __future__ import annotations

import httpx
import pytest

from analytics import monitor

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def session_start(server_url: str, site, session_id: str) -> httpx.Response:
    return httpx.post(
        f"{server_url}/api/v1/sessions",
        json={"session_id": session_id, "visitor_id": f"v-{session_id}", "device": {"type": "mobile"}},
        headers={"X-Site-Key": site.public_key},
        timeout=20,
    )


def test_an_api_call_appears_in_the_feed_and_a_gap_reloads_the_snapshot(site, asgi_server, staff_page, screenshot):
    page = staff_page
    page.goto(f"/dashboards/monitor/?site={site.pk}")
    page.wait_for_selector('#monitor[data-state="live"]')
    assert page.get_attribute("#monitor", "data-resyncs") == "1"  # the snapshot on connect

    assert session_start(asgi_server.url, site, "s-browser-1").status_code == 201

    row = page.wait_for_selector('#monitor-feed li[data-kind="session_started"][data-seq="1"]')
    assert "s-browser-1" in row.inner_text()
    assert page.get_attribute("#monitor", "data-last-seq") == "1"

    # A message lost on the way: the stream skips number 2, the next event is number 3.
    monitor._redis().hincrby(monitor.stream_key(f"site:{site.pk}"), "seq", 1)
    assert session_start(asgi_server.url, site, "s-browser-2").status_code == 201

    page.wait_for_selector('#monitor[data-resyncs="2"][data-state="live"]')
    assert page.get_attribute("#monitor", "data-gaps") == "1"
    assert page.get_attribute("#monitor", "data-last-seq") == "3"
    feed = page.locator("#monitor-feed li .summary").all_inner_texts()
    assert [text.split(" · ")[0] for text in feed] == ["s-browser-2", "s-browser-1"]
    assert page.inner_text("#monitor-counters tr[data-counter='sessions_started'] td[data-window='today']") == "2"
    screenshot(page, "monitor-after-gap")
