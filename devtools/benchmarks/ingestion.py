"""Touchpoint ingestion through the batch API against a raw COPY of the same rows (PRODUCT.md section 9)."""

from __future__ import annotations

import hashlib
import http.client
import io
import random
import statistics
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import msgspec
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from psycopg import Copy
from psycopg.copy import FileWriter

from core.hashing import canonical_json
from devtools.benchmarks.base import (
    DEVICES,
    EVENT_TYPES,
    SEED_FLOOR_EVENTS_PER_MINUTE,
    Benchmark,
    BenchOptions,
    BenchResult,
    BenchSessions,
    Check,
    CpuMeter,
    Series,
    Server,
    ServerSpec,
    bench_site,
    bench_site_delete,
    machine_busy,
    vacuum,
)
from journeys.models import (
    JourneySession,
    Touchpoint,
)
from journeys.services.ingestion import COPY_SQL, touchpoint_copy_prepare

EVENT_WINDOW = timedelta(minutes=10)


def make_event(rng: random.Random, session_id: str, base: datetime) -> dict:
    """One touchpoint shaped like PRODUCT.md's events example, with a fresh event id.

    Its timestamp is within ``EVENT_WINDOW`` after ``base``: live traffic, arriving
    minutes after it happened.
    """
    kind = rng.choice(EVENT_TYPES)
    product = rng.randrange(1, 500)
    at = base + timedelta(milliseconds=rng.randrange(0, EVENT_WINDOW // timedelta(milliseconds=1)))
    event = {
        "event_id": str(uuid.uuid4()),
        "session_id": session_id,
        "type": kind,
        "timestamp": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "page_url": f"https://shop.example/p/{product}?utm_source=tiktok&utm_campaign=viral_tech",
        "page_title": f"Product {product} - Wireless earbuds with noise cancelling | Shop",
        "engagement_score": round(rng.random(), 3),
        "duration_seconds": rng.randrange(0, 600),
        "scroll_depth": round(rng.random(), 2),
        "click_count": rng.randrange(0, 8),
        "device_context": DEVICES[hash(session_id) % 3],
    }
    if kind in ("click", "add_to_cart", "video_play"):
        event["interaction_type"] = kind
        event["interaction_data"] = {"element": f"#{kind}-{product}", "x": rng.randrange(0, 400), "y": 640}
    if kind == "add_to_cart":
        event["conversion_value"] = f"{rng.randrange(500, 20000) / 100:.2f}"
    return event


def make_batches(
    rng: random.Random, session_ids: list[str], *, batches: int, batch_size: int, base: datetime
) -> list[list[dict]]:
    """``batches`` lists of ``batch_size`` events, each spread over the given sessions."""
    return [[make_event(rng, rng.choice(session_ids), base) for _ in range(batch_size)] for _ in range(batches)]


@dataclass
class ClientPlan:
    """Request bodies per client connection; each connection owns a shard of sessions."""

    bodies: list[list[bytes]]
    sizes: list[list[int]]
    events: int
    sessions_per_batch: float


def client_plan(
    rng: random.Random,
    sessions: BenchSessions,
    *,
    connections: int,
    events: int,
    batch_size: int,
    base: datetime,
) -> ClientPlan:
    per_connection = max(1, events // batch_size // connections)
    encoder = msgspec.json.Encoder()
    bodies, sizes, distinct = [], [], []
    for c in range(connections):
        shard = sessions.session_ids[c::connections]
        batches = make_batches(rng, shard, batches=per_connection, batch_size=batch_size, base=base)
        bodies.append([encoder.encode({"events": batch}) for batch in batches])
        sizes.append([len(batch) for batch in batches])
        distinct.extend(len({event["session_id"] for event in batch}) for batch in batches)
    return ClientPlan(bodies, sizes, per_connection * batch_size * connections, statistics.mean(distinct))


@dataclass
class ApiRun:
    events: int
    latencies: list[float]
    meter: CpuMeter

    @property
    def seconds(self) -> float:
        return self.meter.wall

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def post_batches(port: int, key: str, plan: ClientPlan, *, server_pgid: int | None = None) -> ApiRun:
    """Send every body, one thread with one keep-alive connection per shard.

    Every response must be 200 with ``accepted`` equal to the batch size; anything else
    fails the run (a fast server that drops events measures nothing).
    """
    headers = {"Content-Type": "application/json", "X-Site-Key": key}
    start = threading.Barrier(len(plan.bodies) + 1)
    failures: list[str] = []
    latencies: list[float] = []
    decoder = msgspec.json.Decoder()

    def client(bodies: list[bytes], sizes: list[int]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        mine = []
        start.wait()
        try:
            for body, size in zip(bodies, sizes, strict=True):
                sent = time.perf_counter()
                conn.request("POST", "/api/v1/events", body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                mine.append(time.perf_counter() - sent)
                if response.status != 200:
                    failures.append(f"HTTP {response.status}: {payload[:300]!r}")
                    return
                answer = decoder.decode(payload)
                if answer["accepted"] != size or answer["rejected"] or answer["duplicates"] or answer["conflicts"]:
                    failures.append(f"batch of {size}: {answer}")
                    return
        except (OSError, http.client.HTTPException) as error:
            failures.append(f"{error.__class__.__name__}: {error}")
        finally:
            conn.close()
            latencies.extend(mine)

    threads = [
        threading.Thread(target=client, args=(bodies, sizes), daemon=True)
        for bodies, sizes in zip(plan.bodies, plan.sizes, strict=True)
    ]
    for thread in threads:
        thread.start()
    with CpuMeter(server_pgid=server_pgid, database=server_pgid is not None) as meter:
        start.wait()
        for thread in threads:
            thread.join()
    if failures:
        raise RuntimeError(
            f"ingestion through the API failed: {failures[0]} ({len(failures)} failure(s)); "
            "see bench-results/server.log"
        )
    return ApiRun(plan.events, latencies, meter)


def copy_text(value) -> str:
    """One value in PostgreSQL's COPY text format."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    if isinstance(value, dict):
        return copy_text(msgspec.json.encode(value).decode())
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def copy_rows(sessions: BenchSessions, events: int, rng: random.Random, base: datetime) -> list[tuple]:
    """The COPY baseline's rows: the columns and values the API would store for such events.

    Event ids are new; sequences start far above what the API phases reach, so the
    baseline's rows never share a ``(session, sequence)`` with the API's.
    """
    pk_of = dict(zip(sessions.session_ids, sessions.pks, strict=True))
    sequence = {pk: 10_000_000 for pk in sessions.pks}
    now = timezone.now()
    rows = []
    for _ in range(events):
        event = make_event(rng, rng.choice(sessions.session_ids), base)
        pk = pk_of[event["session_id"]]
        sequence[pk] += 1
        rows.append(
            (
                sessions.site.pk,
                pk,
                uuid.UUID(event["event_id"]),
                sequence[pk],
                event["type"],
                event["page_url"],
                event["page_title"],
                event.get("interaction_type", ""),
                event.get("interaction_data"),
                event["engagement_score"],
                event["duration_seconds"],
                event["scroll_depth"],
                event["click_count"],
                Decimal(event.get("conversion_value", "0")),
                event["device_context"],
                None,
                datetime.fromisoformat(event["timestamp"]),
                now,
                hashlib.blake2b(canonical_json(event), digest_size=16).hexdigest(),
            )
        )
    return rows


def copy_encode(rows: list[tuple], copy_format: str) -> tuple[str, list[bytes]]:
    """The statement and the COPY data for ``rows``, encoded before any clock starts.

    ``binary`` is the API's own statement and encoding (psycopg's, offline); ``text``
    is what ``psql \\copy`` would send.
    """
    if copy_format == "text":
        lines = ["\t".join(copy_text(v) for v in row) for row in rows]
        chunks = [("\n".join(lines[i : i + 1000]) + "\n").encode() for i in range(0, len(lines), 1000)]
        return COPY_SQL.replace(" (FORMAT BINARY)", ""), chunks
    buffer = io.BytesIO()
    connection.ensure_connection()
    with connection.connection.cursor() as cursor, Copy(cursor, binary=True, writer=FileWriter(buffer)) as copy:
        touchpoint_copy_prepare(copy)
        for row in rows:
            copy.write_row(row)
    data = buffer.getvalue()
    chunk = 1 << 20
    return COPY_SQL, [data[i : i + chunk] for i in range(0, len(data), chunk)]


def copy_baseline(statement: str, chunks: list[bytes]) -> CpuMeter:
    """One raw psycopg ``COPY ... FROM STDIN`` of all rows in one transaction, committed."""
    connection.ensure_connection()
    raw = connection.connection
    with CpuMeter(database=True) as meter, transaction.atomic(), raw.cursor() as cursor, cursor.copy(statement) as copy:
        for chunk in chunks:
            copy.write(chunk)
    return meter


def _server_candidates(options: BenchOptions) -> list[ServerSpec]:
    choice = options.param("server", "auto")
    workers = options.param("workers", 4, int)
    threads = options.param("threads", 1, int)
    kinds = ["gunicorn", "uvicorn"] if choice == "auto" else [choice]
    return [ServerSpec(kind, workers, threads if kind == "gunicorn" else 1) for kind in kinds]


def _warm_up(server: Server, key: str, sessions: BenchSessions, rng: random.Random) -> None:
    """Small batches from twice as many connections as workers, twice each.

    A worker imports the URLconf (and with it scipy) on its first request; with more
    concurrent requests than workers, every worker gets one before the clock starts.
    """
    connections = 2 * server.spec.workers * server.spec.threads
    plan = client_plan(
        rng,
        sessions,
        connections=connections,
        events=connections * 2 * 100,
        batch_size=100,
        base=timezone.now() - EVENT_WINDOW,
    )
    post_batches(server.port, key, plan)


def ingestion_benchmark(options: BenchOptions) -> BenchResult:
    """PRODUCT.md section 9: >= 20,000 events/s through the API, and >= 0.5 of a raw COPY.

    One site with ``sessions`` sessions; a real server in a subprocess; ``connections``
    client threads, each owning a shard of the sessions (as a collector sharded by
    session would send them), post batches of 1,000 events. Phases interleave: API,
    COPY, API, COPY, ... on the same database; each COPY writes as many rows as the
    API phase before it, for the same sessions, with other event ids.
    """
    events = options.param("events", 20_000 if options.quick else 200_000, int)
    session_count = options.param("sessions", 2_000, int)
    connections = options.param("connections", 4, int)
    batch_size = settings.INGEST_MAX_BATCH_EVENTS
    copy_format = options.param("copy_format", "binary")
    rng = random.Random(options.param("seed", 20261121, int))
    log = options.log
    result = BenchResult("ingestion")

    background = machine_busy()
    sessions = bench_site("ingest", session_count)
    key = sessions.site.public_key

    def plan_for(count: int) -> ClientPlan:
        base = timezone.now() - EVENT_WINDOW
        return client_plan(rng, sessions, connections=connections, events=count, batch_size=batch_size, base=base)

    try:
        # Which server: each candidate takes the same probe load; the faster one runs the benchmark.
        candidates = _server_candidates(options)
        probes: dict[str, float] = {}
        if len(candidates) > 1:
            probe_events = max(batch_size * connections * 3, events // 5)
            for spec in candidates:
                with Server(spec) as server:
                    _warm_up(server, key, sessions, rng)
                    probes[spec.label] = post_batches(server.port, key, plan_for(probe_events)).rate
                    log(f"   probe {spec.label}: {probes[spec.label]:,.0f} events/s")
            spec = max(candidates, key=lambda s: probes[s.label])
        else:
            spec = candidates[0]

        api_runs: list[ApiRun] = []
        copy_meters: list[CpuMeter] = []
        with Server(spec) as server:
            _warm_up(server, key, sessions, rng)
            for run in range(options.repeats):
                plan = plan_for(events)
                sessions_per_batch = plan.sessions_per_batch
                # Each API phase starts from a vacuumed session table and fresh statistics,
                # as autovacuum would keep them (it is off on some servers).
                vacuum(JourneySession, Touchpoint)
                api = post_batches(server.port, key, plan, server_pgid=server.process.pid)
                del plan
                api_runs.append(api)
                log(f"   run {run + 1} API:  {api.rate:>9,.0f} events/s ({api.events:,} in {api.seconds:.2f} s)")
                rows = copy_rows(sessions, api.events, rng, timezone.now() - EVENT_WINDOW)
                statement, chunks = copy_encode(rows, copy_format)
                del rows
                copy_meters.append(copy_baseline(statement, chunks))
                rate = api.events / copy_meters[-1].wall
                log(f"   run {run + 1} COPY: {rate:>9,.0f} rows/s ({api.events:,} in {copy_meters[-1].wall:.2f} s)")
                del chunks
    finally:
        bench_site_delete(sessions.site)

    api_rates = [run.rate for run in api_runs]
    copy_rates = [run.events / meter.wall for run, meter in zip(api_runs, copy_meters, strict=True)]
    per_thousand = [1_000_000 / run.events for run in api_runs]  # CPU seconds -> ms per 1,000 events
    result.series = [
        Series("API (POST /api/v1/events)", "events/s", api_rates),
        Series("raw COPY (psycopg)", "rows/s", copy_rates),
        Series("ratio API / COPY", "", [a / c for a, c in zip(api_rates, copy_rates, strict=True)]),
        Series("API batch latency p50", "ms", [1000 * statistics.median(r.latencies) for r in api_runs]),
        Series("API batch latency max", "ms", [1000 * max(r.latencies) for r in api_runs]),
        Series("client CPU, API phase", "% of one core", [100 * r.meter.process_cpu / r.seconds for r in api_runs]),
    ]
    optional = [
        ("web server CPU, API phase", "ms per 1,000 events", [r.meter.server_cpu for r in api_runs], per_thousand),
        ("PostgreSQL CPU, API phase", "ms per 1,000 events", [r.meter.database_cpu for r in api_runs], per_thousand),
        ("PostgreSQL CPU, COPY phase", "ms per 1,000 rows", [m.database_cpu for m in copy_meters], per_thousand),
        ("machine busy, API phase", "% of all cores", [r.meter.machine_busy for r in api_runs], [100] * len(api_runs)),
        ("machine busy, COPY phase", "% of all cores", [m.machine_busy for m in copy_meters], [100] * len(api_runs)),
    ]
    for label, unit, values, scale in optional:
        if any(value is not None for value in values):
            result.series.append(
                Series(label, unit, [None if v is None else v * k for v, k in zip(values, scale, strict=True)])
            )

    api_median = statistics.median(api_rates)
    ratio = api_median / statistics.median(copy_rates)
    result.checks = [
        Check("touchpoint ingestion through the batch API", api_median, 20_000, "events/s"),
        Check("ingestion API / raw COPY of the same rows", ratio, 0.5, "median API / median COPY"),
    ]
    floor = SEED_FLOOR_EVENTS_PER_MINUTE / 60
    result.notes = [
        f"reference: the seed's floor, {SEED_FLOOR_EVENTS_PER_MINUTE:,} events/minute = {floor:,.0f} events/s; "
        f"the API median is {api_median / floor:.1f}x that",
        f"ratio of the medians: {ratio:.2f}",
    ]
    if any(r.meter.database_cpu is None for r in api_runs):
        result.notes.append(
            "PostgreSQL CPU of an API phase is n/a (or left out) when a server connection closed during it: "
            "Django reconnects after CONN_MAX_AGE, and under ASGI once per request"
        )
    if background is not None:
        result.notes.append(f"background load before the run: {100 * background:.0f}% of all cores busy")
        if background > 0.15:
            result.notes.append("warning: the machine was busy before the run; rates are lower than on a quiet one")
    result.setup = {
        "summary": f"{spec.label}; {connections} client connections; {api_runs[0].events:,} events per run "
        f"in batches of {batch_size} (about {sessions_per_batch:.0f} sessions each); {session_count:,} sessions; "
        f"{options.repeats} interleaved runs",
        "server": spec.label,
        "server_probes_events_per_s": probes,
        "client": f"{connections} threads in the bench process, one http.client connection each (kept alive "
        "where the server allows; gunicorn's sync workers close it after each response), request bodies encoded "
        "before the clock starts; each thread owns a shard of the sessions; its CPU use is in the table",
        "copy_baseline": f"one psycopg COPY ... FROM STDIN ({copy_format} format, data encoded before the clock "
        "starts) of the same columns into journeys_touchpoint from the bench process, one transaction, "
        "commit included",
        "events_per_run": api_runs[0].events,
        "distinct_sessions_per_batch": round(sessions_per_batch, 1),
        "batch_size": batch_size,
        "sessions": session_count,
        "connections": connections,
        "background_busy": background,
        "database": connection.settings_dict.get("NAME"),
    }
    return result


BENCHMARK = Benchmark(
    "ingestion", "touchpoints through POST /api/v1/events vs a raw COPY of the same rows", ingestion_benchmark
)
