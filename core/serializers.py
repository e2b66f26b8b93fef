"""Base classes of the API's input shapes: strict about unknown fields, JSON PostgreSQL can store."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, serializers
from rest_framework.parsers import JSONParser

UNSTORABLE_TEXT = "Text must not contain NUL characters or unpaired surrogates."


def _unstorable_path(value: Any, path: tuple = ()) -> tuple | None:
    """Path of the first string PostgreSQL cannot store (NUL, lone surrogate), or None."""
    if isinstance(value, str):
        if "\x00" in value:
            return path
        try:
            value.encode()
        except UnicodeEncodeError:
            return path
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _unstorable_path(key, (*path, key))
            if found is None:
                found = _unstorable_path(item, (*path, key))
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _unstorable_path(item, (*path, index))
            if found is not None:
                return found
    return None


def unstorable(value: Any) -> bool:
    """Whether PostgreSQL could not store ``value``: a NUL or a lone surrogate anywhere in it."""
    return _unstorable_path(value) is not None


class StorableJSONParser(JSONParser):
    """JSON whose strings PostgreSQL can store; anything else is a 400 naming the top-level field.

    Without this a NUL character or an unpaired surrogate inside a free-form object
    (``entry_point``, ``context``, ``product``) would reach the database and fail there.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        path = _unstorable_path(data)
        if path is None:
            return data
        field = path[0] if path else None
        if not isinstance(field, str) or _unstorable_path(field) is not None:
            raise exceptions.ParseError(UNSTORABLE_TEXT)
        raise exceptions.ValidationError({field: [UNSTORABLE_TEXT]})


class PlainTextJSONParser(StorableJSONParser):
    """The same JSON sent as ``text/plain``: what ``navigator.sendBeacon`` can send without a
    CORS preflight, which a closing page would never complete."""

    media_type = "text/plain"


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


class UnitField(serializers.FloatField):
    def __init__(self, **kwargs):
        super().__init__(min_value=0.0, max_value=1.0, **kwargs)
