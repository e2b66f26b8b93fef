"""Rate limits of the browser endpoints, per client address and per site: 429 with Retry-After,
counted in Redis, and in process memory while Redis is down."""

from __future__ import annotations

import socket
import subprocess
import time

import pytest
import redis
from django.test import RequestFactory
from rest_framework.test import APIClient

from core.rate_limits import Limit, WindowCounter, counter
from journeys.clients import address_hash, client_address, network_key
from journeys.models import JourneySession
from journeys.rate_limits import browser_limits
from tests.journeys.helpers import row_counts
from tests.processes import wait_for

pytestmark = pytest.mark.django_db

SHOP = "https://shop.example"


@pytest.fixture(autouse=True)
def _fresh_counter():
    """Redis is emptied before each test; the process's fallback counts must be too."""
    counter.forget()
    yield
    counter.forget()


@pytest.fixture
def limits(settings):
    settings.RATE_LIMIT_WINDOW_SECONDS = 60
    settings.RATE_LIMIT_ADDRESS_REQUESTS = 3
    settings.RATE_LIMIT_SITE_REQUESTS = 1000
    return settings


def start_from(api, session_id: str, address: str, **headers):
    """``POST /api/v1/sessions`` (the smallest valid body) from the client ``address``."""
    body = {"session_id": session_id, "visitor_id": f"v-{session_id}", "device": {"type": "mobile"}}
    return api.post("/api/v1/sessions", body, format="json", REMOTE_ADDR=address, **headers)


def assert_refused(response, code: str, window: int = 60) -> None:
    assert response.status_code == 429
    body = response.json()
    assert body["code"] == code
    assert body["detail"].startswith("Too many requests from ")
    assert 1 <= int(response["Retry-After"]) <= window


def test_an_address_over_its_limit_gets_429_with_retry_after_and_nothing_is_written(limits, api, site):
    for index in range(3):
        assert start_from(api, f"s-{index}", "198.51.100.7").status_code == 201
    before = row_counts()

    refused = start_from(api, "s-over", "198.51.100.7")

    assert_refused(refused, "rate_limited_address")
    assert refused.json()["detail"] == (
        "Too many requests from this client address: the limit is 3 per 60 seconds. "
        f"Expected available in {refused['Retry-After']} seconds."
    )
    assert row_counts() == before
    assert not JourneySession.objects.filter(session_id="s-over").exists()
    # every browser endpoint counts, with the key in the header or the query
    assert_refused(
        api.post("/api/v1/events", {"events": []}, format="json", REMOTE_ADDR="198.51.100.7"), "rate_limited_address"
    )
    assert_refused(
        APIClient().post(f"/api/v1/decide?site_key={site.public_key}", {}, REMOTE_ADDR="198.51.100.7"),
        "rate_limited_address",
    )
    # another address is not held back by this one
    assert start_from(api, "s-neighbour", "198.51.100.8").status_code == 201


def test_a_flood_is_logged_once_per_window_not_once_per_refused_call(limits, api, site, caplog):
    caplog.set_level("WARNING")

    answers = [start_from(api, f"s-{index}", "198.51.100.7").status_code for index in range(10)]

    assert answers == [201] * 3 + [429] * 7
    assert [(r.name, r.getMessage()) for r in caplog.records if r.levelname == "WARNING"] == [
        ("journeys.rate_limits", f"Site {site.pk}: address rate limit reached (3 requests per 60 s)")
    ]


def test_the_address_limit_is_per_site(limits, site, other_site, client_for):
    for index in range(3):
        assert start_from(client_for(site), f"s-{index}", "198.51.100.7").status_code == 201
    assert_refused(start_from(client_for(site), "s-3", "198.51.100.7"), "rate_limited_address")

    assert start_from(client_for(other_site), "s-3", "198.51.100.7").status_code == 201


def test_a_site_over_its_limit_gets_429_from_every_address(settings, site, other_site, client_for):
    settings.RATE_LIMIT_ADDRESS_REQUESTS = 100
    settings.RATE_LIMIT_SITE_REQUESTS = 4
    for index in range(4):
        assert start_from(client_for(site), f"s-{index}", f"198.51.100.{index + 1}").status_code == 201

    refused = start_from(client_for(site), "s-4", "203.0.113.50")

    assert_refused(refused, "rate_limited_site")
    assert refused.json()["detail"].startswith("Too many requests from this site: the limit is 4 per 60 seconds.")
    assert JourneySession.objects.filter(site=site).count() == 4
    assert start_from(client_for(other_site), "s-4", "203.0.113.50").status_code == 201


def test_a_limit_of_zero_is_no_limit(settings, api):
    settings.RATE_LIMIT_ADDRESS_REQUESTS = 0
    settings.RATE_LIMIT_SITE_REQUESTS = 0

    assert [start_from(api, f"s-{i}", "198.51.100.7").status_code for i in range(5)] == [201] * 5


def test_a_refusal_names_retry_after_to_a_page_on_another_origin(limits, api):
    for index in range(3):
        start_from(api, f"s-{index}", "198.51.100.7")

    refused = start_from(api, "s-over", "198.51.100.7", HTTP_ORIGIN=SHOP)

    assert refused.status_code == 429
    assert refused["Access-Control-Allow-Origin"] == SHOP
    assert refused["Access-Control-Expose-Headers"] == "Retry-After"


def test_preflights_and_refused_keys_do_not_count(limits, api):
    for _ in range(5):
        APIClient().options(
            "/api/v1/sessions", HTTP_ORIGIN=SHOP, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST", REMOTE_ADDR="198.51.100.7"
        )
        bad_key = APIClient().post("/api/v1/sessions", {}, HTTP_X_SITE_KEY="pk_unknown", REMOTE_ADDR="198.51.100.7")
        assert bad_key.status_code == 401

    assert [start_from(api, f"s-{i}", "198.51.100.7").status_code for i in range(3)] == [201] * 3


def test_retry_after_is_the_time_left_in_the_window():
    fresh = WindowCounter()
    limit = Limit("address", "test-bucket", requests=2, window=60)
    url = "redis://127.0.0.1:1/0"  # nothing listens: counted in memory

    assert fresh.hit([limit], redis_url=url, now=6000.2).exceeded is None
    assert fresh.hit([limit], redis_url=url, now=6010.0).exceeded is None
    over = fresh.hit([limit], redis_url=url, now=6019.5).exceeded

    assert (over.limit, over.count, over.retry_after) == (limit, 3, 41)  # the window is [6000, 6060)
    assert fresh.hit([limit], redis_url=url, now=6060.0).exceeded is None  # a new window


# --- the client address -------------------------------------------------------------------


def request_from(remote: str, forwarded: str | None = None):
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    return RequestFactory().post("/api/v1/sessions", REMOTE_ADDR=remote, **extra)


def test_without_trusted_proxies_x_forwarded_for_is_ignored(settings):
    settings.RATE_LIMIT_TRUSTED_PROXIES = 0

    assert client_address(request_from("198.51.100.7", "203.0.113.1")) == "198.51.100.7"


@pytest.mark.parametrize(
    ("trusted", "forwarded", "client"),
    [
        (1, "203.0.113.9", "203.0.113.9"),
        (1, "6.6.6.6, 203.0.113.9", "203.0.113.9"),  # the left entry is the client's own claim
        (2, "6.6.6.6, 203.0.113.9, 10.0.0.2", "203.0.113.9"),
        (2, "203.0.113.9", "203.0.113.9"),  # fewer hops than proxies: the farthest known
        (1, "", "10.0.0.1"),  # no header: the proxy itself
        (1, "203.0.113.9:4711", "203.0.113.9"),
        (1, "[2001:db8:1:2::5]:443", "2001:db8:1:2::/64"),
    ],
)
def test_behind_trusted_proxies_the_client_is_the_first_hop_no_proxy_is(settings, trusted, forwarded, client):
    settings.RATE_LIMIT_TRUSTED_PROXIES = trusted

    assert client_address(request_from("10.0.0.1", forwarded)) == client


def test_an_ipv6_client_counts_by_its_64_and_a_mapped_ipv4_as_ipv4():
    assert network_key("2001:db8:1:2:aaaa::1") == network_key("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    assert network_key("2001:db8:1:3::1") == "2001:db8:1:3::/64"
    assert network_key("::ffff:198.51.100.7") == "198.51.100.7"
    assert network_key("not an address") == ""


def test_one_ipv6_subscriber_cannot_escape_its_limit_by_changing_address(limits, api):
    for index in range(3):
        assert start_from(api, f"s-{index}", f"2001:db8:1:2::{index + 1}").status_code == 201

    assert_refused(start_from(api, "s-over", "2001:db8:1:2:ffff::9"), "rate_limited_address")
    assert start_from(api, "s-next-subscriber", "2001:db8:1:3::1").status_code == 201


def test_the_address_is_kept_only_as_a_keyed_hash(limits, api, site):
    start_from(api, "s-1", "198.51.100.7")

    session = JourneySession.objects.get(session_id="s-1")
    assert session.client_hash == address_hash("198.51.100.7")
    assert len(session.client_hash) == 64
    row = JourneySession.objects.filter(pk=session.pk).values().get()
    assert not [name for name, value in row.items() if "198.51.100.7" in str(value)]
    [address_limit, _] = browser_limits(site_id=site.pk, address="198.51.100.7")
    assert "198.51.100.7" not in address_limit.bucket


# --- Redis down ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def own_redis():
    """A redis-server of this test's own on a free port, stopped by its PID."""
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        assert wait_for(lambda: _pings(client), timeout=10), "redis-server did not start"
        yield process, url, client
    finally:
        process.terminate()
        process.wait(timeout=10)


def _pings(client) -> bool:
    try:
        return client.ping()
    except redis.ConnectionError:
        return False


def test_limits_count_in_redis_then_hold_in_memory_when_redis_stops(limits, api, site, own_redis):
    process, url, client = own_redis
    limits.RATE_LIMIT_REDIS_URL = url
    for index in range(2):
        assert start_from(api, f"s-{index}", "198.51.100.7").status_code == 201
    counted = {key.decode(): int(client.get(key)) for key in client.keys("rl:*")}
    assert sorted(counted.values()) == [2, 2]  # the address's bucket and the site's

    process.terminate()
    process.wait(timeout=10)
    answers = [start_from(api, f"s-down-{index}", "198.51.100.7") for index in range(4)]

    # counted afresh in this process's memory: three more, then refused; never a 5xx
    assert [answer.status_code for answer in answers] == [201, 201, 201, 429]
    assert_refused(answers[-1], "rate_limited_address")
    assert JourneySession.objects.filter(site=site).count() == 5


def test_limits_hold_with_redis_unreachable_from_the_start(limits, api, site):
    limits.RATE_LIMIT_REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    started = time.monotonic()

    answers = [start_from(api, f"s-{index}", "198.51.100.7").status_code for index in range(5)]

    assert answers == [201, 201, 201, 429, 429]
    assert time.monotonic() - started < 10
    assert JourneySession.objects.filter(site=site).count() == 3
