"""The live monitor's feed: what the services publish, how it is numbered, and the snapshot.

PRODUCT.md section 7: a socket can drop messages, so every message carries a sequence
number, and a client that sees a gap (or reconnects) reloads a snapshot from the
server. The database is the record; the feed is a view of it.

**Publishing.** A service that decided an event happened calls one of the
``*_published`` helpers below (one line). They call :func:`monitor_publish`, which
registers a ``transaction.on_commit`` callback: nothing is sent for a transaction that
rolls back. The callback only appends the event to an in-process queue; a daemon
thread with its own event loop (:class:`_Publisher`) numbers and sends what is queued,
so a request never waits on Redis. What gathered in the queue goes out as one channel
layer message per stream (``{"type": "monitor.batch", "texts": [...]}``, the events
already encoded), so the consumer keeps up at 1,000 events/s. When Redis is down or slow, the event is logged
and dropped, never raised; the drop is made visible to clients (see below). Batch
paths (touchpoint ingestion) are not streamed per event.

**Streams and sequence numbers.** Every site has a stream, ``site:<id>``, and there is
one stream of every site, ``all``. Each event goes to both: through the Redis channel
layer to the groups :func:`group_name` names, numbered separately per stream. A
stream's number is a Redis hash ``<prefix>:monitor:stream:<stream>`` with ``seq``
(``HINCRBY``, atomic, so monotonic across web processes and workers) and ``epoch`` (a
random token set once; a flushed or restarted Redis gets a new one, so a client never
mistakes the restarted numbers for old ones). A number is taken only when an event is
sent, so a rolled-back transaction leaves no hole. Events dropped in this process
(queue full, Redis error) are added to the next ``HINCRBY`` of their stream: a drop
always shows as a hole in the numbers, which the client sees and answers by reloading
the snapshot.

**Messages** (JSON text frames on ``/ws/monitor/``)::

    {"type": "event", "stream": "site:3", "epoch": "9f..", "seq": 42, "kind": "stage_changed",
     "id": "transition:812", "site": 3, "at": "2026-11-21T10:00:00.123456+00:00",
     "published_at": 1763719200.1234, "data": {...}}
    {"type": "counters", "stream": "site:3", "epoch": "9f..", "seq": 42, "site": 3,
     "at": "...", "published_at": ..., "data": {"recent_minutes": 5, "recent": {...}, "today": {...}}}

``kind`` is one of :data:`KINDS`; ``id`` names the database row the event is about (the
snapshot uses the same ids, so a client de-duplicates); ``at`` is the row's time;
``published_at`` is the publisher's clock (epoch seconds) when the service published.
A counters message takes no number: its ``seq`` is the stream's head when it was
counted, so a client that has fewer knows that it missed something even when no event
follows.

**Counters** (:func:`counters_for`): sessions started, stage changes (not counting the
start), conversions, revenue (sum of conversion values, currencies not converted) and
cues shown, over the last :data:`RECENT_MINUTES` minutes and since midnight
(``TIME_ZONE``). Read from PostgreSQL by one beat task every ``MONITOR_COUNTERS_SECONDS``
(:func:`monitor_counters_publish`) and sent to every active site's stream and to
``all``: with several web processes, one publisher gives every client the same numbers.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
import secrets
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import redis
import redis.asyncio
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from core.redis_breaker import redis_call
from journeys.models import ConversionEvent, JourneySession, Site, StageTransition
from personalization.models import (
    ApprovalRequest,
    ClaimLedger,
    OptimizationProposal,
    ProposalStatus,
    RequestStatus,
)

logger = logging.getLogger(__name__)

NO_FEED_EPOCH = "redis-unavailable"

KINDS = (
    "session_started",
    "stage_changed",
    "conversion",
    "cue_shown",
    "optimizer_reweight_applied",
    "proposal_created",
    "proposal_decided",
    "approval_decided",
)
ALL = "all"
RECENT_MINUTES = 5
SNAPSHOT_EVENTS = 100
# Events waiting in one process beyond this are dropped (and show as a hole): a slow
# Redis must not grow the web process's memory without bound.
MAX_PENDING = 20_000
# What accumulated while the previous send was in flight goes out as one channel layer
# message per stream (at most this many events): at 1,000 events/s, one message per
# event would cost the consumer one Redis round trip each and fall behind.
BATCH = 200
BATCH_MESSAGE_TYPE = "monitor.batch"
# A process sends at most once per this interval: an event after a quiet spell goes out
# at once, and under load what gathers in the interval goes out together. A send costs
# the web process about 2 ms of CPU whatever it carries (the numbering pipeline and a
# channel-layer group_send per stream, each a few Redis round trips), against about
# 0.02 ms per event: sent per decision, it cost more than the decision itself. Batched,
# it is a small share, for at most this much latency (the budget, event to browser, is 1 s).
SEND_INTERVAL_SECONDS = 0.25


# --- streams -------------------------------------------------------------------------


def stream_of(site_id: int | None) -> str:
    return ALL if site_id is None else f"site:{site_id}"


def group_name(stream: str) -> str:
    """The channel layer group of a stream (group names allow ``[a-zA-Z0-9_.-]``)."""
    return "monitor." + stream.replace(":", ".")


def _prefix() -> str:
    return settings.CHANNEL_LAYERS["default"].get("CONFIG", {}).get("prefix", "asgi")


def stream_key(stream: str) -> str:
    return f"{_prefix()}:monitor:stream:{stream}"


_sync_redis: redis.Redis | None = None


def _redis() -> redis.Redis:
    global _sync_redis
    if _sync_redis is None:
        _sync_redis = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=settings.REDIS_SOCKET_TIMEOUT, socket_timeout=2
        )
    return _sync_redis


def stream_head(stream: str) -> tuple[str, int]:
    """``(epoch, seq)``: the stream's epoch (made if new) and the last number it gave out."""
    key = stream_key(stream)
    client = _redis()
    client.hsetnx(key, "epoch", secrets.token_hex(8))
    epoch, seq = client.hmget(key, "epoch", "seq")
    return epoch.decode(), int(seq or 0)


async def stream_head_async(connection: redis.asyncio.Redis, stream: str) -> tuple[str, int]:
    key = stream_key(stream)
    await connection.hsetnx(key, "epoch", secrets.token_hex(8))
    epoch, seq = await connection.hmget(key, "epoch", "seq")
    return epoch.decode(), int(seq or 0)


# --- publishing ----------------------------------------------------------------------


@dataclass(frozen=True)
class FeedEvent:
    """One event of the feed, as both the live path and the snapshot describe it."""

    kind: str
    id: str
    site: int
    at: datetime
    data: dict

    def out(self) -> dict:
        return {"kind": self.kind, "id": self.id, "site": self.site, "at": self.at.isoformat(), "data": self.data}


@dataclass(frozen=True)
class _Item:
    streams: tuple[str, ...]
    body: dict  # the message without stream, epoch and seq
    numbered: bool


def monitor_publish(event: FeedEvent) -> None:
    """Send ``event`` to its site's stream and to ``all`` once the current transaction commits.

    Never raises and never blocks on Redis; outside a transaction it is queued at once.
    """
    published_at = time.time()
    body = {"type": "event", **event.out(), "published_at": published_at}
    item = _Item((stream_of(event.site), ALL), body, True)
    try:
        transaction.on_commit(lambda: _publisher().put(item))
    except Exception:  # the feed must never break the write that it reports
        logger.exception("monitor: could not queue %s %s", event.kind, event.id)


def counters_publish(site_id: int | None, counters: dict, *, at: datetime) -> None:
    """Send counters to one stream (``site_id`` None: ``all``), with the stream's head as ``seq``."""
    body = {"type": "counters", "site": site_id, "at": at.isoformat(), "published_at": time.time(), "data": counters}
    _publisher().put(_Item((stream_of(site_id),), body, False))


def monitor_flush(timeout: float = 5.0) -> bool:
    """Wait until this process has sent (or dropped) everything queued; whether it did in time."""
    publisher = _current
    return publisher is None or publisher.flush(timeout)


class _Publisher:
    """A daemon thread with its own event loop that numbers and sends queued messages.

    One per process (made again after a fork). Messages of one stream are numbered in
    queue order and sent in one channel layer message per stream and batch, streams in
    parallel; within a process, a stream's events arrive in order.
    """

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.queue: deque[_Item] = deque()
        self.lost: Counter[str] = Counter()
        self.pending = 0
        self.awake = False  # a wake-up is on its way to the loop; guarded by ``lock``
        self.lock = threading.Lock()
        self.idle = threading.Condition(self.lock)
        self.last_warning = 0.0
        self.loop = asyncio.new_event_loop()
        self.wake = asyncio.Event()
        self.thread = threading.Thread(target=self._run, name="monitor-publisher", daemon=True)
        self.thread.start()
        atexit.register(self.flush, 2.0)

    def put(self, item: _Item) -> None:
        with self.lock:
            if len(self.queue) >= MAX_PENDING:
                self.lost.update(item.streams if item.numbered else ())
                self._warn("monitor: %s messages waiting; dropping (clients will resync)", len(self.queue))
                return
            self.queue.append(item)
            self.pending += 1
            # Wake the loop once per batch, not once per event: each wake-up is a write to
            # the loop's self-pipe and a thread switch.
            if self.awake:
                return
            self.awake = True
        self.loop.call_soon_threadsafe(self.wake.set)

    def flush(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.idle:
            while self.pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.idle.wait(left)
        return True

    def _warn(self, message: str, *args) -> None:
        now = time.monotonic()
        if now - self.last_warning > 10:
            self.last_warning = now
            logger.warning(message, *args)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._drain())

    async def _drain(self) -> None:
        self.layer = get_channel_layer()
        self.redis = redis.asyncio.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=5)
        last_send = -SEND_INTERVAL_SECONDS
        while True:
            await self.wake.wait()
            wait = last_send + SEND_INTERVAL_SECONDS - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            last_send = time.monotonic()
            self.wake.clear()
            with self.lock:
                self.awake = False
            while True:
                with self.lock:
                    batch = [self.queue.popleft() for _ in range(min(BATCH, len(self.queue)))]
                if not batch:
                    break
                try:
                    await self._send(batch)
                except Exception as error:
                    self._warn("monitor: publishing failed (%s); events dropped, clients will resync", error)
                with self.idle:
                    self.pending -= len(batch)
                    self.idle.notify_all()

    async def _send(self, batch: list[_Item]) -> None:
        numbered: Counter[str] = Counter()
        heads: set[str] = set()
        for item in batch:
            for stream in item.streams:
                if item.numbered:
                    numbered[stream] += 1
                else:
                    heads.add(stream)
        streams = sorted(set(numbered) | heads)
        with self.lock:
            lost = {stream: self.lost.pop(stream, 0) for stream in numbered}
        pipe = self.redis.pipeline(transaction=False)
        for stream in streams:
            key = stream_key(stream)
            pipe.hsetnx(key, "epoch", secrets.token_hex(8))
            if stream in numbered:
                pipe.hincrby(key, "seq", numbered[stream] + lost[stream])
            else:
                pipe.hget(key, "seq")
            pipe.hget(key, "epoch")
        try:
            replies = await pipe.execute()
        except Exception:
            with self.lock:
                self.lost.update({stream: count + lost[stream] for stream, count in numbered.items()})
            raise
        next_seq: dict[str, int] = {}
        epochs: dict[str, str] = {}
        for index, stream in enumerate(streams):
            head, epoch = replies[3 * index + 1], replies[3 * index + 2]
            epochs[stream] = epoch.decode()
            next_seq[stream] = int(head or 0) - numbered[stream] + 1 if stream in numbered else int(head or 0)
        outgoing: dict[str, list[str]] = defaultdict(list)
        for item in batch:
            for stream in item.streams:
                seq = next_seq[stream]
                if item.numbered:
                    next_seq[stream] += 1
                message = {**item.body, "stream": stream, "epoch": epochs[stream], "seq": seq}
                outgoing[stream].append(json.dumps(message, separators=(",", ":")))
        results = await asyncio.gather(*(self._send_stream(s, texts) for s, texts in outgoing.items()))
        failed = sum(results)
        if failed:
            self._warn("monitor: %s events not sent; clients will see the gap and resync", failed)

    async def _send_stream(self, stream: str, texts: list[str]) -> int:
        """One ``group_send`` of the stream's texts, in order; the number of events it failed to send."""
        try:
            await self.layer.group_send(group_name(stream), {"type": BATCH_MESSAGE_TYPE, "texts": texts})
        except Exception:
            return len(texts)
        return 0


_current: _Publisher | None = None
_current_lock = threading.Lock()


def _publisher() -> _Publisher:
    global _current
    with _current_lock:
        if _current is None or _current.pid != os.getpid():
            _current = _Publisher()
        return _current


# --- the events, one function per kind: used by the services and by the snapshot -----


def session_started_event(session: JourneySession) -> FeedEvent:
    return FeedEvent(
        "session_started",
        f"session:{session.pk}",
        session.site_id,
        session.started_at,
        {
            "session_id": session.session_id,
            "device_type": session.device_type,
            "source": session.source,
            "journey_path": session.journey_path,
            "persona": session.persona_type,
            "returning": session.returning,
        },
    )


def stage_changed_event(transition: StageTransition, session: JourneySession) -> FeedEvent:
    return FeedEvent(
        "stage_changed",
        f"transition:{transition.pk}",
        session.site_id,
        transition.created_at,
        {
            "session_id": session.session_id,
            "from_stage": transition.from_stage,
            "to_stage": transition.to_stage,
            "trigger": transition.trigger_event,
            "conversion_probability": transition.conversion_probability,
        },
    )


def conversion_event(conversion: ConversionEvent, session: JourneySession) -> FeedEvent:
    return FeedEvent(
        "conversion",
        f"conversion:{conversion.pk}",
        conversion.site_id,
        conversion.converted_at,
        {
            "session_id": session.session_id,
            "type": conversion.type,
            "value": str(Decimal(conversion.value).quantize(Decimal("0.01"))),
            "currency": conversion.currency,
            "sku": str((conversion.product or {}).get("sku") or ""),
        },
    )


def cue_shown_event(
    *, session: JourneySession, rule_id: int, rule_key: str, trigger_type: str, text: str, at
) -> FeedEvent:
    # The ledger row is written by one statement that returns rule ids, not row ids;
    # (session, rule, shown_at) names it as well (one row per rule per decision).
    return FeedEvent(
        "cue_shown",
        f"cue:{session.pk}:{rule_id}:{at.isoformat()}",
        session.site_id,
        at,
        {"session_id": session.session_id, "rule": rule_key, "trigger_type": trigger_type, "text": text},
    )


def proposal_created_event(proposal: OptimizationProposal, *, site_id: int, experiment_key: str) -> FeedEvent:
    if proposal.status == ProposalStatus.AUTO_APPLIED:
        return FeedEvent(
            "optimizer_reweight_applied",
            f"proposal:{proposal.pk}:created",
            site_id,
            proposal.created_at,
            {"experiment": experiment_key, "proposal": proposal.pk, "weights": proposal.proposed.get("weights", [])},
        )
    return FeedEvent(
        "proposal_created",
        f"proposal:{proposal.pk}:created",
        site_id,
        proposal.created_at,
        {
            "experiment": experiment_key,
            "proposal": proposal.pk,
            "proposal_kind": proposal.kind,
            "confidence": proposal.confidence,
            "reason": proposal.guardrail_reason,
        },
    )


def proposal_decided_event(proposal: OptimizationProposal, *, site_id: int, experiment_key: str) -> FeedEvent:
    actions = (proposal.evidence or {}).get("actions") or [{}]
    return FeedEvent(
        "proposal_decided",
        f"proposal:{proposal.pk}:decided",
        site_id,
        proposal.decided_at,
        {
            "experiment": experiment_key,
            "proposal": proposal.pk,
            "proposal_kind": proposal.kind,
            "status": proposal.status,
            "by": actions[-1].get("by", ""),
        },
    )


def approval_decided_event(request: ApprovalRequest, obj) -> FeedEvent:
    return FeedEvent(
        "approval_decided",
        f"approval:{request.pk}",
        obj.site_id,
        request.decided_at,
        {
            "object_type": obj._meta.model_name,
            "object": str(obj)[:200],
            "version": request.version,
            "status": request.status,
            "by": request.decider.get_username() if request.decider_id else "",
        },
    )


# One-line calls for the services (each publishes on commit).


def session_started_published(session: JourneySession) -> None:
    monitor_publish(session_started_event(session))


def stage_changed_published(transition: StageTransition, session: JourneySession) -> None:
    monitor_publish(stage_changed_event(transition, session))


def conversion_published(conversion: ConversionEvent, session: JourneySession) -> None:
    monitor_publish(conversion_event(conversion, session))


def cues_shown_published(*, session: JourneySession, verdicts: Iterable, at: datetime) -> None:
    """``verdicts``: the scarcity verdicts whose ledger rows were just written at ``at``."""
    for verdict in verdicts:
        monitor_publish(
            cue_shown_event(
                session=session,
                rule_id=verdict.rule.id,
                rule_key=verdict.rule.key,
                trigger_type=verdict.rule.trigger_type,
                text=verdict.claim.text,
                at=at,
            )
        )


def proposals_created_published(proposals: Iterable[OptimizationProposal]) -> None:
    for proposal in proposals:
        experiment = proposal.experiment
        monitor_publish(proposal_created_event(proposal, site_id=experiment.site_id, experiment_key=experiment.key))


def proposal_decided_published(proposal: OptimizationProposal, experiment) -> None:
    monitor_publish(proposal_decided_event(proposal, site_id=experiment.site_id, experiment_key=experiment.key))


def approval_decided_published(request: ApprovalRequest, obj) -> None:
    monitor_publish(approval_decided_event(request, obj))


# --- counters and the snapshot (reads: the database is the record) --------------------


def day_start(now: datetime) -> datetime:
    return timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)


COUNTER_NAMES = ("sessions_started", "stage_changes", "conversions", "revenue", "cues_shown")


def counters_for(site_ids: list[int] | None, *, now: datetime) -> dict[int, dict]:
    """Counters per site (``site_ids`` None: every site with activity today), five queries.

    Each site's entry: ``{"recent_minutes", "since", "recent": {...}, "today": {...}}``,
    the counts of :data:`COUNTER_NAMES` (revenue as a string with two decimals).
    """
    today, recent = day_start(now), now - timedelta(minutes=RECENT_MINUTES)
    since = min(today, recent)
    tables = [
        ("sessions_started", JourneySession.objects.filter(started_at__gte=since), "site_id", "started_at", None),
        (
            "stage_changes",
            StageTransition.objects.filter(created_at__gte=since).exclude(from_stage=""),
            "session__site_id",
            "created_at",
            None,
        ),
        ("conversions", ConversionEvent.objects.filter(converted_at__gte=since), "site_id", "converted_at", "value"),
        ("cues_shown", ClaimLedger.objects.filter(shown_at__gte=since), "session__site_id", "shown_at", None),
    ]
    out: dict[int, dict] = {}

    def entry(site_id: int) -> dict:
        if site_id not in out:
            zero = {name: 0 for name in COUNTER_NAMES}
            out[site_id] = {
                "recent_minutes": RECENT_MINUTES,
                "since": today.isoformat(),
                "recent": {**zero, "revenue": "0.00"},
                "today": {**zero, "revenue": "0.00"},
            }
        return out[site_id]

    for site_id in site_ids or []:
        entry(site_id)
    for name, queryset, site_field, time_field, amount in tables:
        if site_ids is not None:
            queryset = queryset.filter(**{f"{site_field}__in": site_ids})
        in_today, in_recent = Q(**{f"{time_field}__gte": today}), Q(**{f"{time_field}__gte": recent})
        aggregates = {"today": Count("pk", filter=in_today), "recent": Count("pk", filter=in_recent)}
        if amount:
            aggregates |= {"today_sum": Sum(amount, filter=in_today), "recent_sum": Sum(amount, filter=in_recent)}
        for row in queryset.values(site_key=F(site_field)).annotate(**aggregates).order_by():
            counters = entry(row["site_key"])
            counters["today"][name] = row["today"]
            counters["recent"][name] = row["recent"]
            if amount:
                counters["today"]["revenue"] = _money(row["today_sum"])
                counters["recent"]["revenue"] = _money(row["recent_sum"])
    return out


def _money(value) -> str:
    return str((value or Decimal(0)).quantize(Decimal("0.01")))


def counters_total(per_site: dict[int, dict], *, now: datetime) -> dict:
    """The ``all`` stream's counters: the sum over sites."""
    total = {
        "recent_minutes": RECENT_MINUTES,
        "since": day_start(now).isoformat(),
        "recent": {name: 0 for name in COUNTER_NAMES},
        "today": {name: 0 for name in COUNTER_NAMES},
    }
    for window in ("recent", "today"):
        total[window]["revenue"] = Decimal(0)
        for counters in per_site.values():
            for name in COUNTER_NAMES:
                value = counters[window][name]
                total[window][name] += Decimal(value) if name == "revenue" else value
        total[window]["revenue"] = _money(total[window]["revenue"])
    return total


def monitor_counters_publish(*, now: datetime | None = None) -> int:
    """Count and send the live counters of every active site and of ``all``; the sites sent."""
    now = now or timezone.now()
    site_ids = list(Site.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True))
    per_site = counters_for(site_ids, now=now)
    for site_id in site_ids:
        counters_publish(site_id, per_site[site_id], at=now)
    counters_publish(None, counters_total(per_site, now=now), at=now)
    return len(site_ids)


def recent_events(site_id: int | None, *, limit: int = SNAPSHOT_EVENTS) -> list[FeedEvent]:
    """The latest ``limit`` feed events of a site (None: every site), newest first, from the database."""

    def of_site(queryset, field: str):
        return queryset if site_id is None else queryset.filter(**{field: site_id})

    events: list[FeedEvent] = []
    sessions = of_site(JourneySession.objects.all(), "site_id").order_by("-started_at", "-pk")[:limit]
    events += [session_started_event(session) for session in sessions]
    transitions = (
        of_site(StageTransition.objects.exclude(from_stage=""), "session__site_id")
        .select_related("session")
        .order_by("-created_at", "-pk")[:limit]
    )
    events += [stage_changed_event(transition, transition.session) for transition in transitions]
    conversions = of_site(ConversionEvent.objects.all(), "site_id").select_related("session")
    events += [conversion_event(c, c.session) for c in conversions.order_by("-converted_at", "-pk")[:limit]]
    claims = of_site(ClaimLedger.objects.all(), "session__site_id").select_related("session", "rule")
    events += [
        cue_shown_event(
            session=claim.session,
            rule_id=claim.rule_id,
            rule_key=claim.rule.key,
            trigger_type=claim.trigger_type,
            text=claim.text,
            at=claim.shown_at,
        )
        for claim in claims.order_by("-shown_at", "-pk")[:limit]
    ]
    proposals = of_site(OptimizationProposal.objects.all(), "experiment__site_id").select_related("experiment")
    for proposal in proposals.order_by("-created_at", "-pk")[:limit]:
        experiment = proposal.experiment
        events.append(proposal_created_event(proposal, site_id=experiment.site_id, experiment_key=experiment.key))
    decided = proposals.filter(
        status__in=[ProposalStatus.APPROVED, ProposalStatus.REJECTED], decided_at__isnull=False
    ).order_by("-decided_at", "-pk")[:limit]
    for proposal in decided:
        experiment = proposal.experiment
        events.append(proposal_decided_event(proposal, site_id=experiment.site_id, experiment_key=experiment.key))
    events += _approvals_decided(site_id, limit)
    events.sort(key=lambda event: (event.at, event.id), reverse=True)
    return events[:limit]


def _approvals_decided(site_id: int | None, limit: int) -> list[FeedEvent]:
    """Decided approval requests of versioned objects (proposals have their own event)."""
    proposal_type = ContentType.objects.get_for_model(OptimizationProposal)
    requests = (
        ApprovalRequest.objects.filter(status__in=[RequestStatus.APPROVED, RequestStatus.REJECTED])
        .exclude(content_type=proposal_type)
        .exclude(decided_at=None)
        .select_related("decider", "content_type")
        .order_by("-decided_at", "-pk")
    )
    by_type: dict[int, list[ApprovalRequest]] = defaultdict(list)
    for request in requests[: limit * 4]:
        by_type[request.content_type_id].append(request)
    events = []
    for type_requests in by_type.values():
        model = type_requests[0].content_type.model_class()
        targets = model.objects.in_bulk({request.object_id for request in type_requests})
        for request in type_requests:
            obj = targets.get(request.object_id)
            if obj is not None and (site_id is None or obj.site_id == site_id):
                events.append(approval_decided_event(request, obj))
    return events


def snapshot(site_id: int | None, *, now: datetime | None = None) -> dict:
    """What a client loads on (re)connect or after a gap.

    The stream's head is read before the database, so every event numbered up to
    ``seq`` is in ``events`` (when among the latest); an event that commits in between
    may be both here and in the feed after ``seq``, and the client de-duplicates by ``id``.
    """
    now = now or timezone.now()
    stream = stream_of(site_id)
    # Without Redis there is no live feed: an epoch no stream has, so the first event
    # after Redis returns (with the stream's real epoch) makes the client reload.
    epoch, seq = redis_call(lambda: stream_head(stream), (NO_FEED_EPOCH, 0))
    if site_id is None:
        counters = counters_total(counters_for(None, now=now), now=now)
    else:
        counters = counters_for([site_id], now=now)[site_id]
    return {
        "stream": stream,
        "epoch": epoch,
        "seq": seq,
        "site": site_id,
        "at": now.isoformat(),
        "counters": counters,
        "events": [event.out() for event in recent_events(site_id)],
    }
