"""Input shapes of the journey API. Unknown fields are refused by name, never dropped."""

from __future__ import annotations

from rest_framework import serializers

from core.serializers import INT32_MAX, ClientIdField, FreeFormField, StrictSerializer, UnitField
from journeys.models import DeviceType, IdentifyMethod, Stage


class DeviceIn(StrictSerializer):
    """The visitor's device."""

    type = serializers.ChoiceField(choices=DeviceType.choices)
    screen = serializers.CharField(max_length=20, required=False, allow_blank=True, default="")
    fingerprint = serializers.CharField(
        max_length=500, required=False, allow_blank=True, default="", help_text="Stored only as a keyed hash."
    )
    webdriver = serializers.BooleanField(
        required=False,
        default=False,
        help_text="`navigator.webdriver`: the browser is driven by automation (Playwright, Puppeteer, Selenium). "
        "The session is marked automated and left out of statistics.",
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

    session_id = ClientIdField(help_text="Made by the client, once per session (it appears in URLs).")
    visitor_id = ClientIdField(help_text="Made by the client, kept across sessions (it appears in URLs).")
    device = DeviceIn()
    entry_point = FreeFormField(
        required=False, default=dict, help_text="`source` (at most 50 characters), `campaign`, `url`, ..."
    )
    utm = FreeFormField(required=False, default=dict)
    referrer = FreeFormField(required=False, default=dict)
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
    metadata = FreeFormField(required=False, default=dict)
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

    time_on_page = serializers.FloatField(min_value=0, max_value=INT32_MAX, required=False, help_text="Seconds.")
    scroll_depth = UnitField(required=False)
    interaction_count = serializers.IntegerField(min_value=0, max_value=INT32_MAX, required=False)
    engagement_score = UnitField(required=False)


class StageUpdateIn(StrictSerializer):
    """A move to another journey stage."""

    new_stage = serializers.ChoiceField(choices=Stage.choices)
    trigger_event = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    engagement = EngagementIn(required=False, default=dict)
    context = FreeFormField(required=False, default=dict)


class ConversionIn(StrictSerializer):
    """A conversion, identified by the client's `event_id`."""

    event_id = serializers.UUIDField()
    type = serializers.CharField(
        max_length=50, help_text="`purchase`, `email_signup`, `download`, `consultation_booking`, ..."
    )
    value = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0, default=0)
    currency = serializers.RegexField(r"^[A-Z]{3}$", default="EUR")
    product = FreeFormField(required=False, default=dict)
    funnel_step = serializers.CharField(max_length=50, required=False, allow_blank=True, default="")


class IdentifyIn(StrictSerializer):
    """Who the session's visitor is, across devices."""

    session_id = ClientIdField()
    identifier = serializers.CharField(max_length=320, help_text="Stored only as a keyed hash.")
    method = serializers.ChoiceField(choices=IdentifyMethod.choices)


class ConsentSetIn(StrictSerializer):
    """A visitor's consent choices: send one flag or both."""

    visitor_id = ClientIdField()
    personalization = serializers.BooleanField(required=False, allow_null=True, default=None)
    cross_device = serializers.BooleanField(required=False, allow_null=True, default=None)

    def validate(self, attrs):
        if attrs["personalization"] is None and attrs["cross_device"] is None:
            raise serializers.ValidationError({"personalization": ["Send personalization, cross_device or both."]})
        return attrs
