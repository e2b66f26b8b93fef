"""Input shapes of the journey API. Unknown fields are refused by name, never dropped."""

from __future__ import annotations

from rest_framework import serializers

from core.serializers import StrictSerializer, UnitField
from journeys.models import DeviceType, IdentifyMethod, Stage


class DeviceIn(StrictSerializer):
    type = serializers.ChoiceField(choices=DeviceType.choices)
    screen = serializers.CharField(max_length=20, required=False, allow_blank=True, default="")
    fingerprint = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class PersonaIn(StrictSerializer):
    type = serializers.CharField(max_length=50)
    confidence = UnitField(required=False, allow_null=True, default=None)


class ConsentIn(StrictSerializer):
    personalization = serializers.BooleanField(required=False, allow_null=True, default=None)
    cross_device = serializers.BooleanField(required=False, allow_null=True, default=None)


class IntentSignalsField(serializers.DictField):
    """Named signals in [0, 1]: purchase_intent, urgency, price_sensitivity, research_depth, ..."""

    child = UnitField()


class SessionStartIn(StrictSerializer):
    session_id = serializers.CharField(max_length=100)
    visitor_id = serializers.CharField(max_length=100)
    device = DeviceIn()
    entry_point = serializers.DictField(required=False, default=dict)
    utm = serializers.DictField(required=False, default=dict)
    referrer = serializers.DictField(required=False, default=dict)
    persona = PersonaIn(required=False, allow_null=True, default=None)
    intent_signals = IntentSignalsField(required=False, default=dict)
    returning = serializers.BooleanField(required=False, allow_null=True, default=None)
    consent = ConsentIn(required=False, allow_null=True, default=None)
    metadata = serializers.DictField(required=False, default=dict)
    slots = serializers.ListField(
        child=serializers.SlugField(max_length=50), required=False, allow_null=True, default=None, max_length=50
    )

    def validate_entry_point(self, value):
        source = value.get("source")
        if source is not None and (not isinstance(source, str) or len(source) > 50):
            raise serializers.ValidationError("'source' must be a string of at most 50 characters.")
        return value


class EngagementIn(StrictSerializer):
    time_on_page = serializers.FloatField(min_value=0, required=False)
    scroll_depth = UnitField(required=False)
    interaction_count = serializers.IntegerField(min_value=0, required=False)
    engagement_score = UnitField(required=False)


class StageUpdateIn(StrictSerializer):
    new_stage = serializers.ChoiceField(choices=Stage.choices)
    trigger_event = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    engagement = EngagementIn(required=False, default=dict)
    context = serializers.DictField(required=False, default=dict)


class ConversionIn(StrictSerializer):
    event_id = serializers.UUIDField()
    type = serializers.CharField(max_length=50)
    value = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0, default=0)
    currency = serializers.RegexField(r"^[A-Z]{3}$", default="EUR")
    product = serializers.DictField(required=False, default=dict)
    funnel_step = serializers.CharField(max_length=50, required=False, allow_blank=True, default="")


class IdentifyIn(StrictSerializer):
    session_id = serializers.CharField(max_length=100)
    identifier = serializers.CharField(max_length=320)
    method = serializers.ChoiceField(choices=IdentifyMethod.choices)


class ConsentSetIn(StrictSerializer):
    visitor_id = serializers.CharField(max_length=100)
    personalization = serializers.BooleanField(required=False, allow_null=True, default=None)
    cross_device = serializers.BooleanField(required=False, allow_null=True, default=None)

    def validate(self, attrs):
        if attrs["personalization"] is None and attrs["cross_device"] is None:
            raise serializers.ValidationError({"personalization": ["Send personalization, cross_device or both."]})
        return attrs
