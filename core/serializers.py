"""Base classes of the API's input shapes: strict about unknown fields, JSON PostgreSQL can store."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from rest_framework import exceptions, serializers
from rest_framework.parsers import JSONParser
from rest_framework.utils.json import strict_constant
from rest_framework.utils.mediatypes import _MediaType, media_type_matches

from core.client_ids import CLIENT_ID_MAX_LENGTH, client_id_pattern, client_id_rule
from core.hashing import canonical_json
from core.json_input import NON_FINITE, UNSTORABLE_TEXT, deep_path, json_problem, too_deep, too_large


def _unstorable_path(value: Any) -> tuple | None:
    """Path of the first string PostgreSQL cannot store (NUL, lone surrogate), or None."""
    found = json_problem(value, max_depth=1_000_000)
    return found[0] if found is not None and found[1] == UNSTORABLE_TEXT else None


def unstorable(value: Any) -> bool:
    """Whether PostgreSQL could not store ``value``: a NUL or a lone surrogate anywhere in it."""
    return _unstorable_path(value) is not None


class InputRefused(exceptions.APIException):
    """A refusal of the request as a whole (its body, content type or URL), not of one field
    in it: ``{"detail", "code", "field"}``, where ``field`` names what was refused
    (``body``, ``Content-Type``, ``url``)."""

    def __init__(self, status: int, detail: str, code: str, field: str) -> None:
        self.status_code = status
        super().__init__(detail, code)
        self.field = field


def body_too_large(size: int, limit: int) -> InputRefused:
    return InputRefused(413, f"The body is {size} bytes; the limit is {limit}.", "body_too_large", "body")


UTF8_CHARSETS = frozenset({"utf-8", "utf8"})


def media_type_refused(media_type: str) -> InputRefused:
    return InputRefused(
        415,
        f'Unsupported media type "{media_type}" in request.',
        "unsupported_media_type",
        "Content-Type",
    )


def charset_check(media_type: str | None) -> None:
    """JSON is UTF-8 (RFC 8259): any other ``charset`` is a 415 naming the content type."""
    charset = _MediaType(media_type or "").params.get("charset")
    if charset is not None and charset.strip('"').lower() not in UTF8_CHARSETS:
        raise InputRefused(
            415,
            f'Unsupported charset in "{media_type}": JSON bodies are UTF-8.',
            "unsupported_media_type",
            "Content-Type",
        )


def read_body(stream, request) -> bytes:
    """The body, refused with 413 past ``DATA_UPLOAD_MAX_MEMORY_SIZE`` before it is all read
    (by its declared ``Content-Length`` when there is one)."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    declared = request.META.get("CONTENT_LENGTH") if request is not None else None
    if declared and str(declared).isdigit() and int(declared) > limit:
        raise body_too_large(int(declared), limit)
    body = stream.read(limit + 1)
    if len(body) > limit:
        raise body_too_large(len(body), limit)
    return body


def utf8_text(body: bytes) -> str:
    """``body`` as text; bytes that are not UTF-8 are a 400 naming the body and the position."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputRefused(
            400,
            f"The body is not valid UTF-8: byte 0x{body[error.start]:02x} at position {error.start}.",
            "parse_error",
            "body",
        ) from None


def refusal_at(path: tuple, reason: str, *, code: str = "invalid") -> exceptions.APIException:
    """A 400 naming the top-level field at ``path``; the body itself when there is none."""
    field = path[0] if path else None
    if isinstance(field, str) and not unstorable(field):
        where = ".".join(str(part) for part in path[1:])
        return exceptions.ValidationError({field: [f"{reason} (at {where})" if where else reason]})
    return InputRefused(400, reason, code, "body")


class StorableJSONParser(JSONParser):
    """JSON that every later step can handle, or a 4xx naming what is wrong:

    - a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE``: 413 (``body_too_large``);
    - a charset other than UTF-8: 415; bytes that are not UTF-8 or not JSON: 400 (``parse_error``);
    - nested deeper than ``JSON_MAX_DEPTH``, a string PostgreSQL cannot store (NUL, lone
      surrogate) or a number it cannot (``1e400`` reads as infinity): 400 naming the
      top-level field (``core.json_input``).

    Without this a body nested a thousand levels would end in a ``RecursionError`` and a
    NUL character inside a free-form object would reach the database and fail there.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        charset_check(media_type)
        body = read_body(stream, (parser_context or {}).get("request"))
        return json_body(body)


def json_body(body: bytes) -> Any:
    """Decode and check a JSON body (see :class:`StorableJSONParser`)."""
    text = utf8_text(body)
    max_depth = settings.JSON_MAX_DEPTH
    try:
        data = json.loads(text, parse_constant=strict_constant)
    except RecursionError:
        raise refusal_at(deep_path(text, max_depth), too_deep(max_depth), code="too_deep") from None
    except ValueError as error:
        raise InputRefused(400, f"JSON parse error - {error}", "parse_error", "body") from None
    problem = json_problem(data, max_depth)
    if problem is not None:
        path, reason = problem
        raise refusal_at(path, reason, code=_BODY_CODES.get(reason, "too_deep"))
    return data


# The code of a refusal of the body itself (the problem is not inside a named field).
_BODY_CODES = {UNSTORABLE_TEXT: "parse_error", NON_FINITE: "invalid"}


class PlainTextJSONParser(StorableJSONParser):
    """The same JSON sent as ``text/plain``: what ``navigator.sendBeacon`` can send without a
    CORS preflight, which a closing page would never complete."""

    media_type = "text/plain"


def content_type_check(request, parsers) -> None:
    """The check DRF makes before parsing, for a view that reads ``request.body`` itself: a
    media type none of ``parsers`` takes, or a charset other than UTF-8, is a 415."""
    media_type = request.content_type
    if not any(media_type_matches(parser.media_type, media_type) for parser in parsers):
        raise media_type_refused(media_type)
    charset_check(media_type)


class StrictSerializer(serializers.Serializer):
    """An input shape: answers 400 naming any field it does not know.

    Give each subclass a docstring of its own: it is the shape's description in the
    OpenAPI schema, read by frontend developers.
    """

    @property
    def fields(self):
        """Built and bound once per class, not per instance.

        DRF deep-copies every declared field for each serializer it makes, which on the
        decision and stage paths cost more than the validation itself. Input shapes are
        only validated (no instance, no context), and a bound field keeps no per-request
        state, so one set of fields serves every request and thread.
        """
        cls = type(self)
        bound = cls.__dict__.get("_shared_fields")
        if bound is None:
            bound = serializers.Serializer.fields.func(cls())
            cls._shared_fields = bound
        return bound

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


# The largest value of a PostgreSQL integer column: counters a client sends are bounded by it.
INT32_MAX = 2_147_483_647


class UnitField(serializers.FloatField):
    def __init__(self, **kwargs):
        super().__init__(min_value=0.0, max_value=1.0, **kwargs)


class FreeFormField(serializers.DictField):
    """A free-form JSON object (``context``, ``metadata``, ``utm``...): any keys and values,
    at most ``JSON_FIELD_MAX_BYTES`` as compact JSON and ``JSON_MAX_DEPTH`` levels deep
    counted from the body (this object is at ``level``: 2 for a top-level field)."""

    def __init__(self, *, level: int = 2, **kwargs):
        self.level = level
        limits = (
            f"At most {settings.JSON_FIELD_MAX_BYTES:,} bytes as JSON, nested at most "
            f"{settings.JSON_MAX_DEPTH - level + 1} levels (itself included)."
        )
        help_text = kwargs.pop("help_text", "")
        super().__init__(help_text=f"{help_text} {limits}".strip(), **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        problem = json_problem(value, settings.JSON_MAX_DEPTH, depth=self.level)
        if problem is not None:
            path, reason = problem
            where = ".".join(str(part) for part in path)
            raise serializers.ValidationError(f"{reason} (at {where})" if where else reason)
        size = len(canonical_json(value))
        if size > settings.JSON_FIELD_MAX_BYTES:
            raise serializers.ValidationError(too_large(size, settings.JSON_FIELD_MAX_BYTES))
        return value


class ClientIdField(serializers.RegexField):
    """An id the client chooses (session, visitor, SKU): it appears in URLs
    (``/sessions/{session_id}/stage``), so only URL-safe characters, of bounded length."""

    def __init__(self, max_length: int = CLIENT_ID_MAX_LENGTH, **kwargs):
        kwargs.setdefault("help_text", client_id_rule(max_length))
        super().__init__(
            client_id_pattern(max_length),
            max_length=max_length,
            min_length=1,
            trim_whitespace=False,
            error_messages={"invalid": client_id_rule(max_length)},
            **kwargs,
        )


def timestamp_window_problem(moment: datetime, now: datetime, *, future: timedelta | None = None) -> str | None:
    """Why a client's timestamp is outside the window it is accepted in, or None.

    The window is ``CLIENT_TIMESTAMP_PAST_DAYS`` into the past and
    ``CLIENT_TIMESTAMP_FUTURE_HOURS`` (or ``future``) into the future: outside it a
    timestamp is a client's broken clock, and one near year 1 or 9999 could be stored but
    not read back.
    """
    past = timedelta(days=settings.CLIENT_TIMESTAMP_PAST_DAYS)
    future = future if future is not None else timedelta(hours=settings.CLIENT_TIMESTAMP_FUTURE_HOURS)
    if moment.utcoffset() is None:
        return "Timestamp must include a timezone offset."
    try:
        if moment < now - past:
            return f"Timestamp is more than {_span(past)} in the past."
        if moment > now + future:
            return f"Timestamp is more than {_span(future)} in the future."
    except OverflowError:
        return "Timestamp is out of range."
    return None


def _span(span: timedelta) -> str:
    hours = int(span.total_seconds() // 3600)
    if hours % 24:
        return "an hour" if hours == 1 else f"{hours} hours"
    days = hours // 24
    return "a day" if days == 1 else f"{days} days"


class ClientDateTimeField(serializers.DateTimeField):
    """A date-time a client sends, accepted only inside the timestamp window
    (:func:`timestamp_window_problem`); ``future`` widens it for dates that are meant to be
    ahead (a restock date)."""

    def __init__(self, *, future: timedelta | None = None, **kwargs):
        self.future = future
        super().__init__(**kwargs)

    def to_internal_value(self, value):
        moment = super().to_internal_value(value)
        problem = timestamp_window_problem(moment, timezone.now(), future=self.future)
        if problem is not None:
            raise serializers.ValidationError(problem)
        return moment
