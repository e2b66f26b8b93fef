"""Touchpoint ingestion: the hot path of ``POST /api/v1/events``.

A batch is validated in plain code (msgspec, no per-object serializers), then written
in one transaction:

1. the sessions the batch names are read and locked in id order (so two batches for
   one session serialize and sequence numbers never collide, and no deadlock);
2. the event ids already stored are read in one indexed query;
3. the new rows go in with one ``COPY``;
4. the sessions' touchpoint counters and last activity move in one ``UPDATE``;
5. rejected events go to the quarantine table, conflicts to the conflict log.

Idempotency is on ``(site, event_id)``: the first write wins; a repeat with the same
content is a duplicate, with other content a conflict (logged, not stored). If a
concurrent batch stores one of our ids between steps 2 and 3, the COPY fails on the
unique constraint; it is rolled back to a savepoint and retried with fresh ids.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import msgspec
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from psycopg import errors as pg_errors

from journeys.hashing import canonical_json
from journeys.models import IdempotencyConflict, JourneySession, QuarantinedEvent, Site, Touchpoint

Unit = Annotated[float, msgspec.Meta(ge=0, le=1)]
Count = Annotated[int, msgspec.Meta(ge=0, le=2_147_483_647)]
ShortText = Annotated[str, msgspec.Meta(max_length=50)]


class EventIn(msgspec.Struct, forbid_unknown_fields=False):
    """One touchpoint as the client sends it. Unknown fields are kept in ``extra``."""

    event_id: uuid.UUID
    session_id: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
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


@dataclass
class _Valid:
    index: int
    event: EventIn
    raw: dict
    digest: str
    extra: dict
    value: Decimal


_decoder = msgspec.json.Decoder()


def _field_of(error: msgspec.ValidationError) -> str:
    """``Expected ... - at `$.scroll_depth``` -> ``scroll_depth``."""
    message = str(error)
    marker = "`$."
    if marker in message:
        return message.split(marker, 1)[1].split("`", 1)[0].split("[", 1)[0].split(".", 1)[0]
    if "missing required field" in message:
        return message.rsplit("`", 2)[-2]
    return "non_field_errors"


def _reason(error: msgspec.ValidationError) -> str:
    return str(error).split(" - at ", 1)[0]


def parse_batch(body: bytes) -> list:
    """Decode a batch body; malformed or oversized bodies raise :class:`BatchRejected`."""
    if len(body) > settings.INGEST_MAX_BATCH_BYTES:
        raise BatchRejected(413, f"Batch body is over {settings.INGEST_MAX_BATCH_BYTES} bytes.", "batch_too_large")
    try:
        document = _decoder.decode(body)
    except msgspec.DecodeError as error:
        raise BatchRejected(400, f"Malformed JSON: {error}.", "parse_error") from error
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


def _validate(index: int, raw: Any, now: datetime) -> tuple[_Valid | None, dict | None]:
    if not isinstance(raw, dict):
        return None, {"non_field_errors": ["Each event must be a JSON object."]}
    encoded = canonical_json(raw)
    if len(encoded) > settings.INGEST_MAX_EVENT_BYTES:
        raise BatchRejected(
            413,
            f"Event {index} is {len(encoded)} bytes; the limit is {settings.INGEST_MAX_EVENT_BYTES}.",
            "event_too_large",
            index=index,
        )
    try:
        event = msgspec.convert(raw, EventIn)
    except msgspec.ValidationError as error:
        return None, {_field_of(error): [_reason(error)]}
    if event.timestamp.tzinfo is None:
        return None, {"timestamp": ["Timestamp must include a timezone offset."]}
    if event.timestamp - now > timedelta(seconds=settings.INGEST_MAX_FUTURE_SECONDS):
        return None, {"timestamp": ["Timestamp is more than a day in the future."]}
    value = Decimal(0)
    if event.conversion_value is not None:
        try:
            value = Decimal(str(event.conversion_value)).quantize(Decimal("0.01"))
        except InvalidOperation:
            return None, {"conversion_value": ["Not a number."]}
        if not (0 <= value <= CONVERSION_VALUE_MAX):
            return None, {"conversion_value": ["Must be between 0 and 9999999999.99."]}
    extra = {key: raw[key] for key in raw.keys() - KNOWN_FIELDS}
    digest = hashlib.blake2b(encoded, digest_size=16).hexdigest()
    return _Valid(index, event, raw, digest, extra, value), None


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
TOUCHPOINT_TABLE = Touchpoint._meta.db_table
SESSION_TABLE = JourneySession._meta.db_table
COPY_SQL = f"COPY {TOUCHPOINT_TABLE} ({', '.join(_COPY_COLUMNS)}) FROM STDIN"

_json = msgspec.json.Encoder()


def _json_or_none(value: Any) -> str | None:
    return None if value is None else _json.encode(value).decode()


def events_ingest(*, site: Site, events: list, now: datetime | None = None) -> IngestResult:
    """Validate and store a parsed batch (see the module docstring for the contract)."""
    now = now or timezone.now()
    result = IngestResult()
    valid: list[_Valid] = []
    quarantine: list[QuarantinedEvent] = []

    def reject(index: int, raw: Any, errors: dict) -> None:
        event_id = raw.get("event_id") if isinstance(raw, dict) else None
        event_id = event_id if isinstance(event_id, str) else ""
        result.rejected.append({"index": index, "event_id": event_id or None, "errors": errors})
        quarantine.append(
            QuarantinedEvent(
                site=site,
                endpoint="events",
                event_id=event_id[:100],
                batch_index=index,
                raw_payload=raw,
                reason=errors,
                received_at=now,
            )
        )

    for index, raw in enumerate(events):
        item, errors = _validate(index, raw, now)
        if errors is not None:
            reject(index, raw, errors)
        else:
            valid.append(item)

    with transaction.atomic():
        sessions = _lock_sessions(site, {item.event.session_id for item in valid})
        known = []
        for item in valid:
            if item.event.session_id in sessions:
                known.append(item)
            else:
                reject(item.index, item.raw, {"session_id": ["Unknown session for this site."]})
        conflicts: list[IdempotencyConflict] = []
        for _attempt in range(3):
            fresh, duplicates, conflicts = _split_new(site, known)
            try:
                with transaction.atomic():
                    counts = _copy(site, fresh, sessions, now)
                break
            except pg_errors.UniqueViolation:
                continue
        else:  # pragma: no cover - needs three lost races in a row
            raise RuntimeError("could not store batch after three attempts")
        result.accepted = len(fresh)
        result.duplicates = duplicates
        result.conflicts = len(conflicts)
        _bump_sessions(counts)
        if quarantine:
            QuarantinedEvent.objects.bulk_create(quarantine)
        if conflicts:
            IdempotencyConflict.objects.bulk_create(conflicts)
    result.rejected.sort(key=lambda r: r["index"])
    return result


def _lock_sessions(site: Site, session_ids: set[str]) -> dict[str, list]:
    """``session_id -> [pk, next_sequence, last_activity_at]`` for the named sessions, locked."""
    if not session_ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, session_id, total_touchpoints, last_activity_at FROM {SESSION_TABLE} "
            "WHERE site_id = %s AND session_id = ANY(%s) ORDER BY id FOR UPDATE",
            [site.pk, list(session_ids)],
        )
        return {row[1]: [row[0], row[2], row[3]] for row in cursor.fetchall()}


def _split_new(site: Site, items: list[_Valid]) -> tuple[list[_Valid], int, list[IdempotencyConflict]]:
    """Events not stored yet (first of each id), duplicates count, and conflict rows."""
    stored: dict[uuid.UUID, str] = {}
    if items:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT event_id, payload_hash FROM {TOUCHPOINT_TABLE} WHERE site_id = %s AND event_id = ANY(%s)",
                [site.pk, [item.event.event_id for item in items]],
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
    next_sequence = {session_id: state[1] for session_id, state in sessions.items()}
    rows = []
    for item in items:
        event = item.event
        pk = sessions[event.session_id][0]
        next_sequence[event.session_id] += 1
        rows.append(
            (
                site.pk,
                pk,
                event.event_id,
                next_sequence[event.session_id],
                event.type,
                event.page_url,
                event.page_title,
                event.interaction_type,
                _json_or_none(event.interaction_data),
                event.engagement_score,
                event.duration_seconds,
                event.scroll_depth,
                event.click_count,
                item.value,
                _json_or_none(event.device_context),
                _json_or_none(item.extra or None),
                event.timestamp,
                now,
                item.digest,
            )
        )
        entry = counts.setdefault(pk, [0, event.timestamp])
        entry[0] += 1
        entry[1] = max(entry[1], event.timestamp)
    connection.ensure_connection()
    with connection.connection.cursor() as cursor, cursor.copy(COPY_SQL) as copy:
        for row in rows:
            copy.write_row(row)
    return counts


def _bump_sessions(counts: dict[int, list]) -> None:
    if not counts:
        return
    pks, added, latest = zip(*((pk, n, ts) for pk, (n, ts) in counts.items()), strict=True)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {SESSION_TABLE} AS s SET total_touchpoints = s.total_touchpoints + v.added, "
            "last_activity_at = GREATEST(s.last_activity_at, LEAST(v.latest, now())) "
            "FROM unnest(%s::bigint[], %s::int[], %s::timestamptz[]) AS v(id, added, latest) WHERE s.id = v.id",
            [list(pks), list(added), list(latest)],
        )
