"""The dashboard budget of PRODUCT.md section 9: a page in <= 300 ms at 1M sessions / 10M touchpoints.

``dashboard_page``: in a dedicated database (``<default name>_dashboard_bench``, made
and migrated here; never the working database), ``bulk_generate`` writes one site with
``sessions`` sessions and ``touchpoints_per_session`` touchpoints each over ``days``
days, and the rollups are built. The data is kept between runs and reused when a site
of the same size and seed is there (generating it takes minutes).

What is measured, per dashboard page (``/dashboards/...``, Django's test client logged
in as staff, no network): the server time, i.e. the ``Server-Timing`` header the
outermost middleware sets (all middleware, the view, the templates, the database).
Each request of a round asks for a different date range (25 to 30 days inside the
data, all of the site), so no response or query cache can answer it from an earlier
request. A round is ``requests`` requests per page, pages interleaved; ``--repeats``
rounds; p50/p95/p99 per round, the budget is checked on each page's median p95. Also
measured: the same ranges through the ``analytics.queries`` functions directly and
through ``GET /api/v1/analytics/overview``, the full rollup build after generation, and
one incremental rollup run of a day's key (the minute worker's usual work).
"""

from __future__ import annotations

import contextlib
import random
import statistics
import time
from datetime import timedelta

import psycopg
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connections
from django.test import Client
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from analytics.filters import Filters
from analytics.models import RollupDirtyDay, SessionDaily
from analytics.queries import page_tables
from analytics.rollups import rollups_update
from devtools.benchmarks.base import Benchmark, BenchOptions, BenchResult, Check, Series
from devtools.bulk_data import bulk_generate
from journeys.models import Site

PAGES = ["overview", "experiments", "scarcity", "journeys", "personalization"]
BUDGET_MS = 300.0


@contextlib.contextmanager
def bench_database(name: str, log):
    """Point the default connection at database ``name`` (created and migrated if needed)."""
    connection = connections["default"]
    params = connection.get_connection_params()
    with psycopg.connect(**{**params, "dbname": "postgres"}, autocommit=True) as admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            log(f"   creating database {name}")
            admin.execute(f'CREATE DATABASE "{name}"')
    original = connection.settings_dict["NAME"]
    connection.close()
    connection.settings_dict["NAME"] = name
    settings.DATABASES["default"]["NAME"] = name
    try:
        call_command("migrate", verbosity=0)
        yield
    finally:
        connection.close()
        connection.settings_dict["NAME"] = original
        settings.DATABASES["default"]["NAME"] = original


def _server_ms(response, wall: float) -> float:
    for part in response.get("Server-Timing", "").split(","):
        name, _, duration = part.strip().partition(";dur=")
        if name == "app" and duration:
            return float(duration)
    return wall * 1000


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def dashboard_page_benchmark(options: BenchOptions) -> BenchResult:
    sessions = options.param("sessions", 100_000 if options.quick else 1_000_000, int)
    per_session = options.param("touchpoints_per_session", 10, int)
    days = options.param("days", 30, int)
    seed = options.param("seed", 20261121, int)
    requests = options.param("requests", 20 if options.quick else 40, int)
    database = options.param("database", f"{connections['default'].settings_dict['NAME']}_dashboard_bench")
    log = options.log
    result = BenchResult("dashboard_page")
    rng = random.Random(seed)

    with bench_database(database, log):
        token = f"bulk-{seed}-{sessions}-{per_session}-{days}-"
        site = Site.objects.filter(domain__startswith=token).first()
        generated = None
        if site is None:
            log(f"   generating {sessions:,} sessions x {per_session} touchpoints over {days} days (seed {seed})")
            started = time.monotonic()
            bulk = bulk_generate(
                sessions=sessions,
                touchpoints_per_session=per_session,
                days=days,
                seed=seed,
                last_day=timezone.now().date(),
                log=log,
            )
            generated = {"seconds": time.monotonic() - started, "rows": bulk.counts}
            site = Site.objects.get(pk=bulk.site_id)
        build = rollups_update()
        if build.keys:
            log(f"   rollups built: {build.keys} keys in {build.seconds:.1f} s")
        with connections["default"].cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
            cursor.execute("SELECT count(*) FROM journeys_touchpoint WHERE site_id = %s", [site.pk])
            touchpoints = cursor.fetchone()[0]
            cursor.execute("SELECT count(*) FROM journeys_journeysession WHERE site_id = %s", [site.pk])
            session_rows = cursor.fetchone()[0]
        first_day = SessionDaily.objects.filter(site=site).order_by("day").values_list("day", flat=True).first()
        last_day = SessionDaily.objects.filter(site=site).order_by("-day").values_list("day", flat=True).first()

        # The minute worker's usual work: one (site, day) key recomputed.
        incremental = []
        for _ in range(options.repeats):
            RollupDirtyDay.objects.create(site_id=site.pk, day=last_day)
            incremental.append(rollups_update().seconds * 1000)

        ranges = []
        for _ in range(requests):
            start = first_day + timedelta(days=rng.randrange(0, 5))
            ranges.append((start, min(last_day, start + timedelta(days=24 + rng.randrange(0, 6)))))

        staff, _ = get_user_model().objects.get_or_create(
            username="bench-dashboard-staff", defaults={"is_staff": True, "is_superuser": True}
        )
        # Requests come as HTTPS (as in production), so the HTTPS redirect lets them through.
        client = Client()
        client.force_login(staff)
        urls = {}
        for page in PAGES:
            try:
                urls[page] = reverse(f"dashboards:{page}")
            except NoReverseMatch:
                result.notes.append(f"no page dashboards:{page}; not measured")
        urls["api overview"] = "/api/v1/analytics/overview"

        def params(date_from, date_to) -> dict:
            return {"date_from": date_from.isoformat(), "date_to": date_to.isoformat(), "site": str(site.pk)}

        for url in urls.values():  # warm-up: imports, templates, connection
            response = client.get(url, params(first_day, last_day), secure=True)
            if response.status_code != 200:
                raise RuntimeError(f"GET {url} answered {response.status_code}: {response.content[:300]!r}")

        rounds: dict[str, list[list[float]]] = {name: [] for name in [*urls, *(f"queries {p}" for p in QUERY_PAGES)]}
        for _ in range(options.repeats):
            times: dict[str, list[float]] = {name: [] for name in rounds}
            for date_from, date_to in ranges:
                for name, url in urls.items():
                    sent = time.perf_counter()
                    response = client.get(url, params(date_from, date_to), secure=True)
                    wall = time.perf_counter() - sent
                    if response.status_code != 200:
                        raise RuntimeError(f"GET {url} answered {response.status_code}")
                    times[name].append(_server_ms(response, wall))
                filters = Filters(date_from=date_from, date_to=date_to, site_id=site.pk)
                for page in QUERY_PAGES:
                    sent = time.perf_counter()
                    page_tables(page, filters)
                    times[f"queries {page}"].append((time.perf_counter() - sent) * 1000)
            for name, values in times.items():
                rounds[name].append(values)

    for name, per_round in rounds.items():
        label = name if name.startswith(("api", "queries")) else f"page {name}"
        for share, tag in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
            result.series.append(Series(f"{label} {tag}", "ms", [_percentile(values, share) for values in per_round]))
    result.series.append(Series("incremental rollup run, one day's key", "ms", incremental))
    for page in urls:
        if page in PAGES:
            p95 = statistics.median(_percentile(values, 0.95) for values in rounds[page])
            result.checks.append(
                Check(
                    f"dashboard page '{page}' p95 server time, {touchpoints:,} touchpoints / {session_rows:,} sessions",
                    p95,
                    BUDGET_MS,
                    "ms",
                    higher_is_better=False,
                )
            )
    result.notes.append(
        f"{requests} requests per page per round, each with another 25-30 day range; "
        "server time = Server-Timing (inside Django: middleware, view, templates, database)"
    )
    if build.keys:
        result.notes.append(f"full rollup build after generation: {build.keys} keys in {build.seconds:.1f} s")
    if generated:
        result.notes.append(f"data generated in {generated['seconds']:.0f} s: {generated['rows']}")
    result.setup = {
        "summary": f"{session_rows:,} sessions, {touchpoints:,} touchpoints over {days} days in database "
        f"{database}; Django test client as staff; {requests} requests x {len(urls)} URLs x {options.repeats} rounds",
        "database": database,
        "sessions": session_rows,
        "touchpoints": touchpoints,
        "days": days,
        "seed": seed,
        "requests_per_round": requests,
        "urls": urls,
        "generated": generated,
    }
    return result


QUERY_PAGES = ["overview", "journeys", "personalization", "allocation", "scarcity_daily"]


BENCHMARK = Benchmark(
    "dashboard_page",
    "dashboard pages' server time at 1M sessions / 10M touchpoints, from rollups",
    dashboard_page_benchmark,
)
