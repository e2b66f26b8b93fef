"""Touchpoint ingestion: the hot path of ``POST /api/v1/events``.

A batch is validated in plain code (msgspec, no per-object serializers), then written
in one transaction:

1. the sessions the batch names are read and locked in id order (so two batches for
   one session serialize and sequence numbers never collide, and no deadlock), each
   after its visitor is held against erasure (:mod:`journeys.visitor_lock`);
2. the new rows go in with one binary ``COPY``;
3. the sessions' touchpoint counters and last activity move in one ``UPDATE``;
4. rejected events go to the quarantine table (except those of an erased session,
   :func:`journeys.services.privacy.sessions_erased`), conflicts to the conflict log.

Idempotency is on ``(site, event_id)``: the first write wins; a repeat with the same
content is a duplicate, with other content a conflict (logged, not stored). Repeats
inside the batch are found in memory. Repeats of stored events are rare (a client's
retry), so the transaction first tries the ``COPY`` without looking the ids up: the
unique constraint on ``(site, event_id)`` refuses a stored id, the transaction is
rolled back, and it is run again with the batch's ids read from the table first (one
indexed query), storing only the new events. The same path handles a concurrent
batch that stores one of our ids first. A refused ``COPY`` leaves dead rows for
vacuum; a retried batch usually fails on its first row, so that costs little.

Performance (measured by ``manage.py bench``, which holds the budget of PRODUCT.md
section 9): per event the work is one JSON decode, one canonical encode and hash, one
``msgspec.convert`` and one binary ``COPY`` row; settings are read once per batch; the
cyclic garbage collector is paused while a batch is handled; array parameters go to
PostgreSQL as one literal each rather than being quoted element by element.
"""

from __future__ import annotations

import gc
import hashlib
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import msgspec
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from psycopg import Copy, postgres
from psycopg import errors as pg_errors
from psycopg.adapt import Dumper
from psycopg.pq import Format

from core.client_ids import CLIENT_ID_MAX_LENGTH, client_id_pattern, client_id_rule
from core.hashing import canonical_json
from core.json_input import deep_path, json_problem, too_deep, too_large
from core.serializers import timestamp_window_problem
from journeys.models import IdempotencyConflict, JourneySession, QuarantinedEvent, Site, Touchpoint
from journeys.services.privacy import sessions_erased
from journeys.visitor_lock import gates_pass, held

Unit = Annotated[float, msgspec.Meta(ge=0, le=1)]
Count = Annotated[int, msgspec.Meta(ge=0, le=2_147_483_647)]
ShortText = Annotated[str, msgspec.Meta(max_length=50)]


class EventIn(msgspec.Struct, forbid_unknown_fields=False):
    """One touchpoint as the client sends it. Unknown fields are kept in ``extra``."""

    event_id: uuid.UUID
    session_id: Annotated[str, msgspec.Meta(pattern=client_id_pattern(), max_length=CLIENT_ID_MAX_LENGTH)]
    type: Annotated[str, msgspec.Meta(min_length=1, max_length=50)]
    timestamp: datetime
    page_url: str = ""
    page_title: Annotated[str, msgspec.Meta(max_length=255)] = ""
    interaction_type: ShortText = ""
    interaction_data: dict | None = None
    engagement_score: Unit | None = None
    duration_seconds: Count | None = None
    scroll_depth: Unit | None = None
    click_count: Count = 0
    conversion_value: float | str | None = None
    device_context: dict | None = None


KNOWN_FIELDS = frozenset(EventIn.__struct_fields__)
CONVERSION_VALUE_MAX = Decimal("9999999999.99")


class BatchRejected(Exception):
    """The whole batch is refused; nothing is written."""

    def __init__(self, status: int, detail: str, code: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.body = {"detail": detail, "code": code, **extra}


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    conflicts: int = 0
    rejected: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "conflicts": self.conflicts,
            "rejected": self.rejected,
        }


@dataclass(slots=True)
class _Valid:
    index: int
    event: EventIn
    raw: dict
    digest: str
    extra: dict | None
    value: Decimal


_decoder = msgspec.json.Decoder()


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a batch is decoded and stored.

    A batch of 1,000 events allocates tens of thousands of dicts, strings and structs,
    which would set off dozens of collections per batch, some of them over the whole
    heap; none of these objects are in cycles, so reference counting frees them
    anyway. Measured on the benchmark's batches this cuts the Python time per batch by
    about 40%. The collector is re-enabled only if it was on, so nesting (and another
    thread doing the same) leaves it as it was; pending work is collected afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _field_of(error: msgspec.ValidationError) -> str:
    """``Expected ... - at `$.scroll_depth``` -> ``scroll_depth``."""
    message = str(error)
    marker = "`$."
    if marker in message:
        return message.split(marker, 1)[1].split("`", 1)[0].split("[", 1)[0].split(".", 1)[0]
    if "missing required field" in message:
        return message.rsplit("`", 2)[-2]
    return "non_field_errors"


def _reason(error: msgspec.ValidationError, field: str) -> str:
    if field == "session_id" and "regex" in str(error):
        return client_id_rule()
    return str(error).split(" - at ", 1)[0]


def parse_batch(body: bytes) -> list:
    """Decode a batch body; malformed or oversized bodies raise :class:`BatchRejected`."""
    if len(body) > settings.INGEST_MAX_BATCH_BYTES:
        raise BatchRejected(413, f"Batch body is over {settings.INGEST_MAX_BATCH_BYTES} bytes.", "batch_too_large")
    try:
        with _gc_paused():
            document = _decoder.decode(body)
    except msgspec.DecodeError as error:
        raise BatchRejected(400, f"Malformed JSON: {error}.", "parse_error", field="body") from error
    except UnicodeDecodeError as error:
        raise BatchRejected(
            400,
            f"The body is not valid UTF-8: byte 0x{body[error.start]:02x} at position {error.start}.",
            "parse_error",
            field="body",
        ) from None
    except RecursionError:
        raise _too_deep_batch(deep_path(body.decode("utf-8", "replace"), settings.JSON_MAX_DEPTH)) from None
    if not isinstance(document, dict) or not isinstance(document.get("events"), list):
        raise BatchRejected(400, "Body must be an object with an 'events' list.", "invalid", field="events")
    unknown = sorted(set(document) - {"events"})
    if unknown:
        raise BatchRejected(400, f"Unknown top-level fields: {', '.join(unknown)}.", "invalid", field=unknown[0])
    events = document["events"]
    if not events:
        raise BatchRejected(400, "The 'events' list is empty.", "invalid", field="events")
    if len(events) > settings.INGEST_MAX_BATCH_EVENTS:
        raise BatchRejected(
            413,
            f"Batch has {len(events)} events; the limit is {settings.INGEST_MAX_BATCH_EVENTS}.",
            "too_many_events",
        )
    return events


def _too_deep_batch(path: tuple) -> BatchRejected:
    """A body too deep to decode at all: refused whole, naming the event (by index) and where."""
    max_depth = settings.JSON_MAX_DEPTH
    where = ".".join(str(part) for part in path[:4]) + (".…" if len(path) > 4 else "")
    if len(path) >= 2 and path[0] == "events" and isinstance(path[1], int):
        return BatchRejected(400, f"{too_deep(max_depth)} (at {where})", "too_deep", field="events", index=path[1])
    return BatchRejected(400, f"{too_deep(max_depth)} (at {where or 'the body'})", "too_deep", field="body")


@dataclass(frozen=True, slots=True)
class _Limits:
    """The settings one batch is checked against, read once per batch."""

    max_event_bytes: int
    max_field_bytes: int
    # Levels an event may nest: the body and the events list are the two above it.
    max_event_depth: int
    earliest_timestamp: datetime
    latest_timestamp: datetime
    now: datetime

    @classmethod
    def at(cls, now: datetime) -> _Limits:
        return cls(
            settings.INGEST_MAX_EVENT_BYTES,
            settings.JSON_FIELD_MAX_BYTES,
            settings.JSON_MAX_DEPTH - 2,
            now - timedelta(days=settings.CLIENT_TIMESTAMP_PAST_DAYS),
            now + timedelta(hours=settings.CLIENT_TIMESTAMP_FUTURE_HOURS),
            now,
        )


FREE_FORM_FIELDS = ("interaction_data", "device_context")


def _json_problem_of(raw: dict, encoded: bytes, limits: _Limits) -> dict | None:
    """Field errors for what the JSON rules refuse in one event (``core.json_input``).

    Cheap tests on the encoded event first: only an event with a NUL escape or more
    brackets than levels allowed is walked, only one over the field limit is measured
    field by field.
    """
    max_depth = limits.max_event_depth
    if b"\\u0000" in encoded or encoded.count(b"{") + encoded.count(b"[") > max_depth:
        problem = json_problem(raw, max_depth)
        if problem is not None:
            path, reason = problem
            where = ".".join(str(part) for part in path[1:])
            return {str(path[0]) if path else "non_field_errors": [f"{reason} (at {where})" if where else reason]}
    if len(encoded) > limits.max_field_bytes:
        for name in (*FREE_FORM_FIELDS, *(raw.keys() - KNOWN_FIELDS)):
            value = raw.get(name)
            if isinstance(value, dict | list):
                size = len(canonical_json(value))
                if size > limits.max_field_bytes:
                    return {name: [too_large(size, limits.max_field_bytes)]}
    return None


_ZERO = Decimal(0)
_CENT = Decimal("0.01")


def _validate_all(events: list, limits: _Limits, reject: Callable[[int, Any, dict], None]) -> list[_Valid]:
    """The events that pass validation, in order; ``reject(index, raw, errors)`` gets the others.

    One loop with its names bound locally: this runs once per event on the hot path.
    Raises :class:`BatchRejected` for an event over the size limit.
    """
    valid: list[_Valid] = []
    append = valid.append
    encode = canonical_json
    convert = msgspec.convert
    blake2b = hashlib.blake2b
    known = KNOWN_FIELDS
    max_bytes = limits.max_event_bytes
    earliest = limits.earliest_timestamp
    latest = limits.latest_timestamp
    for index, raw in enumerate(events):
        if not isinstance(raw, dict):
            reject(index, raw, {"non_field_errors": ["Each event must be a JSON object."]})
            continue
        encoded = encode(raw)
        if len(encoded) > max_bytes:
            raise BatchRejected(
                413,
                f"Event {index} is {len(encoded)} bytes; the limit is {max_bytes}.",
                "event_too_large",
                index=index,
            )
        errors = _json_problem_of(raw, encoded, limits)
        if errors is not None:
            reject(index, raw, errors)
            continue
        try:
            event = convert(raw, EventIn)
        except msgspec.ValidationError as error:
            field_name = _field_of(error)
            reject(index, raw, {field_name: [_reason(error, field_name)]})
            continue
        timestamp = event.timestamp
        if timestamp.tzinfo is None or not (earliest <= timestamp <= latest):
            reject(index, raw, {"timestamp": [timestamp_window_problem(timestamp, limits.now)]})
            continue
        value = _ZERO
        if event.conversion_value is not None:
            value, errors = _conversion_value(event.conversion_value)
            if errors is not None:
                reject(index, raw, errors)
                continue
        unknown = raw.keys() - known
        extra = {key: raw[key] for key in unknown} if unknown else None
        append(_Valid(index, event, raw, blake2b(encoded, digest_size=16).hexdigest(), extra, value))
    return valid


def _conversion_value(sent: float | str) -> tuple[Decimal, dict | None]:
    try:
        value = Decimal(str(sent)).quantize(_CENT)
    except InvalidOperation:
        return _ZERO, {"conversion_value": ["Not a number."]}
    if value.is_nan():
        return _ZERO, {"conversion_value": ["Not a number."]}
    if not (0 <= value <= CONVERSION_VALUE_MAX):
        return _ZERO, {"conversion_value": ["Must be between 0 and 9999999999.99."]}
    return value, None


_COPY_COLUMNS = (
    "site_id",
    "session_id",
    "event_id",
    "sequence",
    "type",
    "page_url",
    "page_title",
    "interaction_type",
    "interaction_data",
    "engagement_score",
    "duration_seconds",
    "scroll_depth",
    "click_count",
    "conversion_value",
    "device_context",
    "metadata",
    "client_timestamp",
    "received_at",
    "payload_hash",
)
# PostgreSQL types of _COPY_COLUMNS, for the binary COPY (it applies no casts).
COPY_TYPES = (
    "int8",
    "int8",
    "uuid",
    "int4",
    "text",
    "text",
    "text",
    "text",
    "jsonb",
    "float8",
    "int4",
    "float8",
    "int4",
    "numeric",
    "jsonb",
    "jsonb",
    "timestamptz",
    "timestamptz",
    "text",
)
TOUCHPOINT_TABLE = Touchpoint._meta.db_table
SESSION_TABLE = JourneySession._meta.db_table
COPY_SQL = f"COPY {TOUCHPOINT_TABLE} ({', '.join(_COPY_COLUMNS)}) FROM STDIN (FORMAT BINARY)"

_json = msgspec.json.Encoder()


class _JsonbDumper(Dumper):
    """jsonb in binary COPY: version byte 1, then the JSON text, encoded by msgspec."""

    format = Format.BINARY
    oid = postgres.types["jsonb"].oid

    def dump(self, obj: Any) -> bytes:
        return b"\x01" + _json.encode(obj)


class _JsonbMarker:
    """Only a key to register :class:`_JsonbDumper` under; ``set_types`` finds it by oid."""


def touchpoint_copy_prepare(copy: Copy) -> Copy:
    """Set the column types of a ``COPY_SQL`` copy; jsonb columns take plain dicts and lists."""
    copy.cursor.adapters.register_dumper(_JsonbMarker, _JsonbDumper)
    copy.set_types(COPY_TYPES)
    return copy


def _array_literal(values: Iterable[str]) -> str:
    """A PostgreSQL array literal of strings; one parameter instead of one per element."""
    return "{" + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"


def events_ingest(*, site: Site, events: list, now: datetime | None = None) -> IngestResult:
    """Validate and store a parsed batch (see the module docstring for the contract)."""
    with _gc_paused():
        return _ingest(site, events, now or timezone.now())


def _ingest(site: Site, events: list, now: datetime) -> IngestResult:
    limits = _Limits.at(now)
    rejected: list[dict] = []
    quarantine: list[QuarantinedEvent] = []

    def reject(index: int, raw: Any, errors: dict) -> None:
        rejected.append(_rejection(index, raw, errors))
        quarantine.append(_quarantined(site, index, raw, errors, now))

    try:
        valid = _validate_all(events, limits, reject)
    except RecursionError:
        # An event the decoder could still read but the encoder (a few frames deeper) cannot.
        problem = json_problem({"events": events}, settings.JSON_MAX_DEPTH)
        raise _too_deep_batch(problem[0] if problem else ()) from None
    # The first attempt trusts the unique constraint; a refused COPY rolls the whole
    # transaction back and the next attempts read the stored ids first.
    for attempt in range(4):
        try:
            return _store(site, valid, rejected, quarantine, now, look_up=attempt > 0)
        except pg_errors.UniqueViolation:
            continue
    raise RuntimeError("could not store batch: lost three races for its event ids")  # pragma: no cover


@transaction.atomic
def _store(
    site: Site,
    valid: list[_Valid],
    rejected: list[dict],
    quarantine: list[QuarantinedEvent],
    now: datetime,
    *,
    look_up: bool,
) -> IngestResult:
    """One attempt at the transaction; raises ``UniqueViolation`` if an id is stored already."""
    rejected, quarantine = list(rejected), list(quarantine)
    sessions = _lock_sessions(site, {item.event.session_id for item in valid})
    unknown = {item.event.session_id for item in valid} - sessions.keys()
    erased = sessions_erased(site=site, session_ids=unknown) if unknown else set()
    known = []
    for item in valid:
        if item.event.session_id in sessions:
            known.append(item)
        else:
            errors = {"session_id": ["Unknown session for this site."]}
            rejected.append(_rejection(item.index, item.raw, errors))
            # An erased visitor's event is not kept: nothing would ever find it again.
            if item.event.session_id not in erased:
                quarantine.append(_quarantined(site, item.index, item.raw, errors, now))
    fresh, duplicates, conflicts = _split_new(site, known, look_up=look_up)
    counts = _copy(site, fresh, sessions, now)
    _bump_sessions(counts)
    if quarantine:
        QuarantinedEvent.objects.bulk_create(quarantine)
    if conflicts:
        IdempotencyConflict.objects.bulk_create(conflicts)
    rejected.sort(key=lambda r: r["index"])
    return IngestResult(len(fresh), duplicates, len(conflicts), rejected)


def _rejection(index: int, raw: Any, errors: dict) -> dict:
    event_id = raw.get("event_id") if isinstance(raw, dict) else None
    return {"index": index, "event_id": event_id if isinstance(event_id, str) and event_id else None, "errors": errors}


def _quarantined(site: Site, index: int, raw: Any, errors: dict, now: datetime) -> QuarantinedEvent:
    event_id = raw.get("event_id") if isinstance(raw, dict) else None
    event_id = event_id if isinstance(event_id, str) else ""
    # What jsonb cannot hold (NUL), or what could not be read back or shown (nested too deep),
    # is kept as escaped JSON text instead.
    nul = json_problem(raw, settings.JSON_MAX_DEPTH - 2) is not None
    return QuarantinedEvent(
        site=site,
        endpoint="events",
        event_id=event_id.replace("\x00", "")[:100],
        batch_index=index,
        raw_payload=None if nul else raw,
        raw_text=canonical_json(raw).decode() if nul else "",
        reason=errors,
        received_at=now,
    )


def _lock_sessions(site: Site, session_ids: set[str]) -> dict[str, list]:
    """``session_id -> [pk, touchpoints so far]`` for the named sessions, locked.

    Two statements: the visitors' erasure gates, in bucket order, then the sessions,
    each after its visitor is held (:mod:`journeys.visitor_lock`); a session erased while this waited is
    not returned, so its events are rejected like those of any unknown session.
    ``NO KEY UPDATE``: batches of one session serialize, while the foreign-key checks of
    rows other writers add to it (``KEY SHARE``) do not wait for them.
    """
    if not session_ids:
        return {}
    params = [site.pk, _array_literal(session_ids)]
    gates_pass("s.site_id = %s AND s.session_id = ANY(%s::text[])", params)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT session_id, id, total_touchpoints FROM {SESSION_TABLE} s "
            f"WHERE site_id = %s AND session_id = ANY(%s::text[]) AND {held('s.visitor_id', gate=False)} "
            "ORDER BY id FOR NO KEY UPDATE",
            params,
        )
        return {session_id: [pk, total] for session_id, pk, total in cursor.fetchall()}


def _split_new(
    site: Site, items: list[_Valid], *, look_up: bool
) -> tuple[list[_Valid], int, list[IdempotencyConflict]]:
    """Events not stored yet (first of each id), duplicates count, and conflict rows.

    Without ``look_up`` only repeats inside the batch are found; with it, the ids are
    also read from the table.
    """
    stored: dict[uuid.UUID, str] = {}
    if items and look_up:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT event_id, payload_hash FROM {TOUCHPOINT_TABLE} "
                "WHERE site_id = %s AND event_id = ANY(%s::uuid[])",
                [site.pk, "{" + ",".join(str(item.event.event_id) for item in items) + "}"],
            )
            stored = dict(cursor.fetchall())
    fresh: list[_Valid] = []
    duplicates = 0
    conflicts: list[IdempotencyConflict] = []
    for item in items:
        event_id = item.event.event_id
        first = stored.get(event_id)
        if first is None:
            stored[event_id] = item.digest
            fresh.append(item)
        elif first == item.digest:
            duplicates += 1
        else:
            conflicts.append(
                IdempotencyConflict(
                    site=site,
                    kind="event",
                    client_id=str(event_id),
                    stored_hash=first,
                    received_hash=item.digest,
                    received_payload=item.raw,
                )
            )
    return fresh, duplicates, conflicts


def _copy(site: Site, items: list[_Valid], sessions: dict[str, list], now: datetime) -> dict[int, list]:
    """COPY the rows; returns ``session pk -> [added, latest timestamp]``."""
    counts: dict[int, list] = {}
    if not items:
        return counts
    site_pk = site.pk
    next_sequence = {session_id: state[1] for session_id, state in sessions.items()}
    connection.ensure_connection()
    with connection.connection.cursor() as cursor, cursor.copy(COPY_SQL) as copy:
        write_row = touchpoint_copy_prepare(copy).write_row
        for item in items:
            event = item.event
            session_id = event.session_id
            pk = sessions[session_id][0]
            sequence = next_sequence[session_id] = next_sequence[session_id] + 1
            timestamp = event.timestamp
            write_row(
                (
                    site_pk,
                    pk,
                    event.event_id,
                    sequence,
                    event.type,
                    event.page_url,
                    event.page_title,
                    event.interaction_type,
                    event.interaction_data,
                    event.engagement_score,
                    event.duration_seconds,
                    event.scroll_depth,
                    event.click_count,
                    item.value,
                    event.device_context,
                    item.extra,
                    timestamp,
                    now,
                    item.digest,
                )
            )
            entry = counts.get(pk)
            if entry is None:
                counts[pk] = [1, timestamp]
            else:
                entry[0] += 1
                if timestamp > entry[1]:
                    entry[1] = timestamp
    return counts


def _bump_sessions(counts: dict[int, list]) -> None:
    if not counts:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {SESSION_TABLE} AS s SET total_touchpoints = s.total_touchpoints + v.added, "
            "last_activity_at = GREATEST(s.last_activity_at, LEAST(v.latest, now())) "
            "FROM unnest(%s::bigint[], %s::int[], %s::timestamptz[]) AS v(id, added, latest) WHERE s.id = v.id",
            [
                "{" + ",".join(str(pk) for pk in counts) + "}",
                "{" + ",".join(str(added) for added, _ in counts.values()) + "}",
                _array_literal(latest.isoformat() for _, latest in counts.values()),
            ],
        )
