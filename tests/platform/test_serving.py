"""Serving plumbing: the Server-Timing header, the cache client, the benchmark's reference endpoint."""

from __future__ import annotations

import re

import pytest
from django.core.cache import cache
from django.urls import Resolver404, get_resolver

from devtools.bench_views import indexed_read
from devtools.benchmarks.decision import _server_timing, percentile
from tests.journeys.helpers import start


def test_every_response_carries_the_server_time(api):
    response = start(api, "s-timing")
    assert response.status_code == 201
    assert re.fullmatch(r"app;dur=\d+\.\d{2}", response["Server-Timing"])
    assert _server_timing({"server-timing": response["Server-Timing"]}) == float(response["Server-Timing"][8:])


def test_the_cache_reuses_one_redis_client():
    cache.set("je-test-key", {"n": 1}, 30)
    first = cache._cache.get_client()
    assert cache.get("je-test-key") == {"n": 1}
    assert cache._cache.get_client() is first


def test_nearest_rank_percentile_is_a_measured_value():
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 0.50) == 50.0
    assert percentile([7.0], 0.99) == 7.0
    assert percentile([3.0, 1.0, 2.0], 1.0) == 3.0


def test_bare_endpoint_reads_one_session_by_its_index(api, site, rf, django_assert_num_queries):
    start(api, "s-bare")
    request = rf.get("/bench/indexed-read", {"site": site.pk, "session_id": "s-bare"})
    with django_assert_num_queries(1):
        response = indexed_read(request)
    assert response.status_code == 200
    assert response.content.startswith(b'{"id": ')
    assert indexed_read(rf.get("/bench/indexed-read", {"site": site.pk, "session_id": "nope"})).status_code == 404


def test_the_reference_endpoint_is_served_only_by_the_benchmark_urlconf(client, db):
    product, bench = get_resolver("config.urls"), get_resolver("devtools.bench_urls")

    assert bench.resolve("/bench/indexed-read").func is indexed_read
    with pytest.raises(Resolver404):
        product.resolve("/bench/indexed-read")
    assert client.get("/bench/indexed-read").json() == {"detail": "Not found.", "code": "not_found"}
