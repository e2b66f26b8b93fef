"""Input shapes of the journey API. Unknown fields are refused by name, never dropped."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, serializers
from rest_framework.parsers import JSONParser

from journeys.models import DeviceType, IdentifyMethod, Stage

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


class DeviceIn(StrictSerializer):
    """The visitor's device."""

    type = serializers.ChoiceField(choices=DeviceType.choices)
    screen = serializers.CharField(max_length=20, required=False, allow_blank=True, default="")
    fingerprint = serializers.CharField(
        max_length=500, required=False, allow_blank=True, default="", help_text="Stored only as a keyed hash."
    )


class PersonaIn(StrictSerializer):
    """Who the page thinks the visitor is, and how sure it is (0 to 1)."""

    type = serializers.CharField(max_length=50)
    confidence = UnitField(required=False, allow_null=True, default=None)


class ConsentIn(StrictSerializer):
    """The visitor's consent choices; a flag left out or null is left as it was."""

    personalization = serializers.BooleanField(required=False, allow_null=True, default=None)
    cross_device = serializers.BooleanField(required=False, allow_null=True, default=None)


class IntentSignalsField(serializers.DictField):
    """Named signals in [0, 1]: purchase_intent, urgency, price_sensitivity, research_depth, ..."""

    child = UnitField()


class SessionStartIn(StrictSerializer):
    """A new session: who, on which device, from where. Unknown fields are refused by name."""

    session_id = serializers.CharField(max_length=100, help_text="Made by the client, once per session.")
    visitor_id = serializers.CharField(max_length=100, help_text="Made by the client, kept across sessions.")
    device = DeviceIn()
    entry_point = serializers.DictField(
        required=False, default=dict, help_text="`source` (at most 50 characters), `campaign`, `url`, ..."
    )
    utm = serializers.DictField(required=False, default=dict)
    referrer = serializers.DictField(required=False, default=dict)
    persona = PersonaIn(required=False, allow_null=True, default=None)
    intent_signals = IntentSignalsField(
        required=False, default=dict, help_text="Named signals in [0, 1]: `purchase_intent`, `urgency`, ..."
    )
    returning = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="true for a known returning visitor; a visitor seen before counts as returning anyway.",
    )
    consent = ConsentIn(required=False, allow_null=True, default=None)
    metadata = serializers.DictField(required=False, default=dict)
    slots = serializers.ListField(
        child=serializers.SlugField(max_length=50),
        required=False,
        allow_null=True,
        default=None,
        max_length=50,
        help_text="Slots to decide in the answer; all of the site's slots when left out, none when empty.",
    )

    def validate_entry_point(self, value):
        source = value.get("source")
        if source is not None and (not isinstance(source, str) or len(source) > 50):
            raise serializers.ValidationError("'source' must be a string of at most 50 characters.")
        return value


class EngagementIn(StrictSerializer):
    """How engaged the visitor was on the page that triggered the move."""

    time_on_page = serializers.FloatField(min_value=0, required=False)
    scroll_depth = UnitField(required=False)
    interaction_count = serializers.IntegerField(min_value=0, required=False)
    engagement_score = UnitField(required=False)


class StageUpdateIn(StrictSerializer):
    """A move to another journey stage."""

    new_stage = serializers.ChoiceField(choices=Stage.choices)
    trigger_event = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    engagement = EngagementIn(required=False, default=dict)
    context = serializers.DictField(required=False, default=dict)


class ConversionIn(StrictSerializer):
    """A conversion, identified by the client's `event_id`."""

    event_id = serializers.UUIDField()
    type = serializers.CharField(
        max_length=50, help_text="`purchase`, `email_signup`, `download`, `consultation_booking`, ..."
    )
    value = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0, default=0)
    currency = serializers.RegexField(r"^[A-Z]{3}$", default="EUR")
    product = serializers.DictField(required=False, default=dict)
    funnel_step = serializers.CharField(max_length=50, required=False, allow_blank=True, default="")


class IdentifyIn(StrictSerializer):
    """Who the session's visitor is, across devices."""

    session_id = serializers.CharField(max_length=100)
    identifier = serializers.CharField(max_length=320, help_text="Stored only as a keyed hash.")
    method = serializers.ChoiceField(choices=IdentifyMethod.choices)


class ConsentSetIn(StrictSerializer):
    """A visitor's consent choices: send one flag or both."""

    visitor_id = serializers.CharField(max_length=100)
    personalization = serializers.BooleanField(required=False, allow_null=True, default=None)
    cross_device = serializers.BooleanField(required=False, allow_null=True, default=None)

    def validate(self, attrs):
        if attrs["personalization"] is None and attrs["cross_device"] is None:
            raise serializers.ValidationError({"personalization": ["Send personalization, cross_device or both."]})
        return attrs
