"""The live monitor's budget of PRODUCT.md section 9: event to client <= 1 s at 1,000 events/s.

``monitor_latency``: a real ASGI server (uvicorn, one worker) serves ``/ws/monitor/``; a
websocket client (the ``websockets`` library, in a thread of the bench process) logs in
as staff by the session cookie and subscribes to a fresh site's stream; the bench
process publishes ``events`` per second for ``seconds`` through
:func:`analytics.monitor.monitor_publish` - the services' own path: the on-commit
queue, the publisher thread, the sequence numbers, ``group_send`` to the site's and the
``all`` group on the Redis channel layer, the consumer, the socket.

What is measured, per run:
- latency: the client's clock at receive minus ``published_at`` in the message (the
  publisher's clock when the service called ``monitor_publish``; one process, one
  clock): median, p95, p99, max;
- delivered vs sent, and the holes in the sequence numbers the client saw (a hole is
  what the page answers with a snapshot reload);
- the rate the publisher kept.

The client runs in the bench process, beside the publisher: it competes with it for the
interpreter, so the latency is, if anything, overstated.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import threading
import time
import uuid
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from analytics import monitor
from devtools.benchmarks.base import (
    Benchmark,
    BenchOptions,
    BenchResult,
    Check,
    Series,
    Server,
    ServerSpec,
    machine_busy,
)
from journeys.services.sites import site_create

BUDGET_MS = 1000.0


@dataclass
class Received:
    seqs: list[int] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)


class Watcher(threading.Thread):
    """A staff websocket client subscribed to one site's stream, recording every event."""

    def __init__(self, port: int, cookie: str, site_id: int) -> None:
        super().__init__(name="monitor-bench-client", daemon=True)
        self.port, self.cookie, self.site_id = port, cookie, site_id
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.received = Received()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._watch())
        except BaseException as error:  # reported by the bench
            self.error = error
            self.ready.set()

    async def _watch(self) -> None:
        from websockets.asyncio.client import connect

        url = f"ws://127.0.0.1:{self.port}/ws/monitor/"
        async with connect(
            url, origin=f"http://127.0.0.1:{self.port}", additional_headers={"Cookie": self.cookie}, max_queue=None
        ) as socket:
            await socket.send(json.dumps({"action": "subscribe", "site": self.site_id}))
            answer = json.loads(await socket.recv())
            if answer.get("type") != "subscribed":
                raise RuntimeError(f"subscribe answered {answer}")
            self.ready.set()
            while not self.stop.is_set():
                try:
                    frame = await asyncio.wait_for(socket.recv(), 0.2)
                except TimeoutError:
                    continue
                now = time.time()
                message = json.loads(frame)
                if message.get("type") == "event":
                    self.received.seqs.append(message["seq"])
                    self.received.latencies_ms.append(1000 * (now - message["published_at"]))


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _publish(site_id: int, *, rate: int, seconds: float, run: int) -> tuple[int, float]:
    """Publish ``rate`` events per second for ``seconds``, paced per millisecond tick; (sent, seconds)."""
    total = int(rate * seconds)
    started = time.perf_counter()
    for index in range(total):
        due = started + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        monitor.monitor_publish(
            monitor.FeedEvent("bench", f"bench:{run}:{index}", site_id, timezone.now(), {"index": index})
        )
    return total, time.perf_counter() - started


def monitor_latency_benchmark(options: BenchOptions) -> BenchResult:
    rate = options.param("events", 1000, int)
    seconds = options.param("seconds", 3.0 if options.quick else 10.0, float)
    log = options.log
    result = BenchResult("monitor_latency")
    background = machine_busy()
    token = uuid.uuid4().hex[:10]
    site = site_create(name=f"bench monitor {token}", domain=f"bench-monitor-{token}.invalid")
    user = get_user_model().objects.create_user(f"bench-monitor-{token}", is_staff=True)
    client = Client()
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    runs: list[dict] = []
    spec = ServerSpec("uvicorn", 1)
    try:
        with Server(spec) as server:
            for run in range(options.repeats):
                watcher = Watcher(server.port, cookie, site.pk)
                watcher.start()
                if not watcher.ready.wait(30) or watcher.error:
                    raise RuntimeError(f"the websocket client did not subscribe: {watcher.error!r}")
                head_before = monitor.stream_head(monitor.stream_of(site.pk))[1]
                sent, took = _publish(site.pk, rate=rate, seconds=seconds, run=run)
                flushed = monitor.monitor_flush(30)
                deadline = time.monotonic() + 5
                while len(watcher.received.seqs) < sent and time.monotonic() < deadline:
                    time.sleep(0.05)
                watcher.stop.set()
                watcher.join(10)
                got = watcher.received
                expected = set(range(head_before + 1, head_before + sent + 1))
                holes = len(expected - set(got.seqs))
                runs.append(
                    {
                        "sent": sent,
                        "rate": sent / took,
                        "delivered": len(got.seqs),
                        "holes": holes,
                        "flushed": flushed,
                        "median": statistics.median(got.latencies_ms) if got.latencies_ms else None,
                        "p95": _percentile(got.latencies_ms, 0.95) if got.latencies_ms else None,
                        "p99": _percentile(got.latencies_ms, 0.99) if got.latencies_ms else None,
                        "max": max(got.latencies_ms) if got.latencies_ms else None,
                    }
                )
                r = runs[-1]
                log(
                    f"   run {run + 1}: sent {sent:,} at {r['rate']:,.0f}/s, delivered {r['delivered']:,}, "
                    f"holes {holes}, latency median {r['median']:.1f} ms p99 {r['p99']:.1f} ms max {r['max']:.1f} ms"
                )
    finally:
        user.delete()
        site.delete()

    def series(key: str) -> list[float | None]:
        return [run[key] for run in runs]

    result.series = [
        Series("events published", "events/s", series("rate")),
        Series("delivered / sent", "", [run["delivered"] / run["sent"] for run in runs]),
        Series("sequence holes seen by the client", "", series("holes")),
        Series("latency median", "ms", series("median")),
        Series("latency p95", "ms", series("p95")),
        Series("latency p99", "ms", series("p99")),
        Series("latency max", "ms", series("max")),
    ]
    worst_p99 = max(run["p99"] for run in runs)
    delivered = min(run["delivered"] / run["sent"] for run in runs)
    result.checks = [
        Check("live monitor, event to client p99 (worst run)", worst_p99, BUDGET_MS, "ms", higher_is_better=False),
        Check("live monitor, events delivered / sent (worst run)", delivered, 1.0, ""),
    ]
    result.notes = [f"worst run's max latency: {max(run['max'] for run in runs):.0f} ms"]
    if background is not None:
        result.notes.append(f"background load before the run: {100 * background:.0f}% of all cores busy")
    result.setup = {
        "summary": f"{spec.label}; one staff websocket client on one site's stream; {rate:,} events/s for "
        f"{seconds:g} s through monitor_publish (site and 'all' streams); {options.repeats} runs",
        "server": spec.label,
        "events_per_second": rate,
        "seconds": seconds,
        "client": "websockets (asyncio) in a thread of the bench process, session-cookie login as staff",
        "background_busy": background,
    }
    return result


BENCHMARK = Benchmark(
    "monitor_latency", "live monitor: event to websocket client at 1,000 events/s", monitor_latency_benchmark
)
