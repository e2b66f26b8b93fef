"""What the OpenAPI schema says about the journey API: answers, errors and examples.

Schema only. The serializers here are never instantiated on a request: the views keep
returning the plain dicts of the services (the hot paths cannot afford an output
serializer per call), and ``tests/platform/test_api_contract.py`` checks with
schemathesis that those dicts match what is declared here.

Field names are the contract of PRODUCT.md (appendix "API shapes"); an answer may carry
more fields than listed, never fewer.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema_field,
)
from rest_framework import serializers

from core.serializers import ClientIdField, FreeFormField
from journeys.models import DeviceType, JourneyPath, Stage

# --- errors -------------------------------------------------------------------------------


class ErrorOut(serializers.Serializer):
    """An error that is not about one input field: a message for people and a stable code for code."""

    detail = serializers.CharField(help_text="What went wrong, in English; may change between releases.")
    code = serializers.CharField(help_text="Stable machine-readable code to branch on, e.g. `origin_not_allowed`.")
    field = serializers.CharField(
        required=False,
        help_text="For a refusal of the request as a whole, what was refused: `body`, `Content-Type` or `url`.",
    )
    permission = serializers.CharField(
        required=False,
        help_text="With `permission_required`: the permission the staff account lacks, e.g. `journeys.erase_visitor`.",
    )


class FieldErrors(serializers.Serializer):
    """Input errors by field: ``{"field": ["reason", ...]}``."""


class FieldErrorsExtension(OpenApiSerializerExtension):
    """``{"field": ["reason"]}``; a nested object's errors nest the same way, a list's are keyed by index."""

    target_class = FieldErrors

    def map_serializer(self, auto_schema, direction):
        return {
            "type": "object",
            "description": (
                "Input errors keyed by field name: a list of reasons, or for a nested object (or a list "
                'of them) the same structure one level down, e.g. `{"device": {"type": ["..."]}}`. '
                "Unknown fields are named with `Unknown field.`."
            ),
            "additionalProperties": {
                "anyOf": [
                    {"type": "array", "items": {}},
                    {"type": "object", "additionalProperties": {}},
                ]
            },
            "example": {"session_id": ["This field is required."], "colour": ["Unknown field."]},
        }


BadRequestOut = PolymorphicProxySerializer(
    component_name="BadRequest",
    serializers=[FieldErrors, ErrorOut],
    resource_type_field_name=None,
)

BAD_REQUEST = OpenApiResponse(
    BadRequestOut,
    description='The input is refused and nothing is written: field errors (`{"field": ["reason"]}`; a free-form '
    "object nested too deep, too large, or holding text or numbers PostgreSQL cannot store is named the same "
    'way), or `{"detail", "code", "field": "body"}` for a body that is not UTF-8 or not JSON (`parse_error`) or '
    "is itself nested too deep (`too_deep`) or a number out of range (`invalid`).",
)
BODY_TOO_LARGE = OpenApiResponse(
    ErrorOut,
    description="`body_too_large` (`field`: `body`): the body is over the upload limit (2 MB by default, Django's "
    "`DATA_UPLOAD_MAX_MEMORY_SIZE`). Nothing written.",
)
UNSUPPORTED_MEDIA_TYPE = OpenApiResponse(
    ErrorOut,
    description="`unsupported_media_type` (`field`: `Content-Type`): the body is not sent as one of the media "
    "types listed for the request, or with a charset other than UTF-8. Nothing written.",
)
URL_TOO_LONG = {
    "description": "`url_too_long` (`field`: `url`): the URL (path and query) is longer than `URL_MAX_LENGTH` "
    "(2,048 characters by default). Answered before the path is routed.",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
}


def url_too_long_everywhere(result, generator, request, public):
    """drf-spectacular post-processing hook: every operation can answer 414 (config.middleware)."""
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            operation.setdefault("responses", {}).setdefault("414", URL_TOO_LONG)
    return result


def unauthorized(credentials: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorOut, description=f"Missing or unknown credentials: {credentials}.")


def forbidden(*codes: tuple[str, str]) -> OpenApiResponse:
    listed = "; ".join(f"`{code}`: {why}" for code, why in codes)
    return OpenApiResponse(ErrorOut, description=f"Refused, nothing written. `code` is one of: {listed}.")


def not_found(code: str, what: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorOut, description=f"`{code}`: {what}")


ORIGIN_NOT_ALLOWED = ("origin_not_allowed", "the page's `Origin` is not among the site's allowed origins")
CONSENT_REQUIRED = ("consent_required", "the visitor has not given cross-device consent")
STAFF_ONLY = ("staff_only", "the caller is not staff, or sent only a public site key")
CSRF = ("permission_denied", "a session-cookie call of an unsafe method without a CSRF token")

SITE_KEY_UNAUTHORIZED = unauthorized(
    "no public key (`not_authenticated`), or an unknown or inactive one (`invalid_site_key`)"
)
STAFF_UNAUTHORIZED = unauthorized(
    "no staff token or session (`not_authenticated`), or an invalid token (`authentication_failed`)"
)
SESSION_NOT_FOUND = not_found("session_not_found", "no session with this `session_id` on this site.")
RATE_LIMITED = OpenApiResponse(
    ErrorOut,
    description="Over a rate limit, nothing written: `rate_limited_address` (calls from this client address to "
    "the site) or `rate_limited_site` (calls with the site's key). `Retry-After` says in how many seconds the "
    "window turns.",
)


def browser_errors(*, not_found: OpenApiResponse | None = SESSION_NOT_FOUND, forbidden_codes=()) -> dict:
    """The error answers every browser endpoint can give."""
    responses = {
        400: BAD_REQUEST,
        401: SITE_KEY_UNAUTHORIZED,
        403: forbidden(ORIGIN_NOT_ALLOWED, *forbidden_codes),
        413: BODY_TOO_LARGE,
        415: UNSUPPORTED_MEDIA_TYPE,
        429: RATE_LIMITED,
    }
    if not_found is not None:
        responses[404] = not_found
    return responses


def permission_required(permission: str) -> tuple[str, str]:
    return (
        "permission_required",
        f"the staff account lacks `{permission}` (the Privacy officers role; named in the body's `permission`)",
    )


def staff_errors(
    *, not_found: OpenApiResponse | None = None, bad_request: str, unsafe: bool = False, permission: str = ""
) -> dict:
    """The error answers of a staff endpoint (one that needs ``permission`` besides staff, if named)."""
    codes = (STAFF_ONLY, CSRF) if unsafe else (STAFF_ONLY,)
    if permission:
        codes += (permission_required(permission),)
    responses = {
        400: OpenApiResponse(FieldErrors, description=bad_request),
        401: STAFF_UNAUTHORIZED,
        403: forbidden(*codes),
    }
    if not_found is not None:
        responses[404] = not_found
    return responses


def error_example(status: int, code: str, detail: str) -> OpenApiExample:
    return OpenApiExample(code, value={"detail": detail, "code": code}, response_only=True, status_codes=[str(status)])


ORIGIN_NOT_ALLOWED_EXAMPLE = error_example(
    403, "origin_not_allowed", "Origin 'https://evil.example' is not among this site's allowed origins."
)

# Staff endpoints name their site with the public key; the caller is authenticated by its token.
SITE_KEY = OpenApiParameter(
    "X-Site-Key",
    str,
    OpenApiParameter.HEADER,
    required=True,
    description="The public key (`pk_...`) of the site to read. It names the site; it does not authenticate.",
)

BROWSER_DESCRIPTION = (
    "\n\nAuthentication: the site's public key in `X-Site-Key`, or as `?site_key=pk_...` with the JSON body "
    "sent as `text/plain` (a CORS simple request, as `navigator.sendBeacon` sends). From a browser the page's "
    "origin must be one of the site's allowed origins (else 403 `origin_not_allowed`, nothing written)."
)

# --- the events batch (validated by msgspec on the hot path, described here) ------------------


@extend_schema_field(
    {
        "oneOf": [{"type": "number", "minimum": 0}, {"type": "string", "example": "49.90"}],
        "nullable": True,
        "description": "An amount of money: a number or a decimal string, 0 to 9999999999.99.",
    }
)
class AmountField(serializers.JSONField):
    pass


class TouchpointIn(serializers.Serializer):
    """One touchpoint. Fields outside this list are kept in the touchpoint's metadata."""

    event_id = serializers.UUIDField(help_text="Made once per event by the client; repeats are not stored twice.")
    session_id = ClientIdField()
    type = serializers.CharField(max_length=50, help_text="`page_view`, `click`, `scroll`, `add_to_cart`, ...")
    timestamp = serializers.DateTimeField(
        help_text="When it happened, on the client, with its offset; at most `CLIENT_TIMESTAMP_PAST_DAYS` (7) days "
        "back and `CLIENT_TIMESTAMP_FUTURE_HOURS` (24) hours ahead, else the event is rejected."
    )
    page_url = serializers.CharField(required=False, allow_blank=True)
    page_title = serializers.CharField(required=False, allow_blank=True, max_length=255)
    interaction_type = serializers.CharField(required=False, allow_blank=True, max_length=50)
    interaction_data = FreeFormField(required=False, allow_null=True, level=4)
    engagement_score = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=1)
    duration_seconds = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=2_147_483_647)
    scroll_depth = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=1)
    click_count = serializers.IntegerField(required=False, min_value=0, max_value=2_147_483_647)
    conversion_value = AmountField(required=False, allow_null=True)
    device_context = FreeFormField(required=False, allow_null=True, level=4)


class EventsBatchIn(serializers.Serializer):
    """A batch of touchpoints: 1 to 1,000 events, at most 1 MB."""

    events = TouchpointIn(many=True, min_length=1, max_length=1000)


# --- journey state and decisions ----------------------------------------------------------


class PersonaOut(serializers.Serializer):
    type = serializers.CharField(help_text="Persona type, e.g. `TechEarlyAdopter`; empty when unknown.")
    confidence = serializers.FloatField(allow_null=True, min_value=0, max_value=1)


class NextBestActionOut(serializers.Serializer):
    recommended_action = serializers.CharField(
        help_text="`immediate_conversion_prompt`, `enhanced_personalization` or `engagement_building`."
    )
    timing = serializers.CharField(help_text="`immediate`, `within_60_seconds` or `gradual_building`.")
    personalization = serializers.CharField()
    scarcity_trigger = serializers.CharField()
    intent_strength = serializers.FloatField(help_text="0 to 1: how strongly the visitor intends to buy.")


class JourneyStateOut(serializers.Serializer):
    current_stage = serializers.ChoiceField(choices=Stage.choices)
    journey_path = serializers.ChoiceField(choices=JourneyPath.choices)
    conversion_probability = serializers.FloatField(
        min_value=0, max_value=1, help_text="Estimated chance that this session converts."
    )
    persona = PersonaOut()
    next_best_action = NextBestActionOut()


class OfferOut(serializers.Serializer):
    sku = serializers.CharField()
    name = serializers.CharField()
    price = serializers.CharField(help_text='Decimal as a string, e.g. `"49.90"`.')
    currency = serializers.CharField()
    discount_percent = serializers.CharField(help_text='Decimal as a string, e.g. `"10.00"`.')
    starts_at = serializers.DateTimeField(allow_null=True)
    ends_at = serializers.DateTimeField(allow_null=True)


class SlotDecisionOut(serializers.Serializer):
    variant = serializers.CharField(help_text="Key of the content variant to show.")
    version = serializers.IntegerField(help_text="Published version of the variant.")
    content = serializers.DictField(help_text="The variant's content, as the marketer wrote it (fill it in as text).")
    experiment = serializers.CharField(allow_null=True, help_text="Key of the experiment that chose it, if any.")
    strategy = serializers.CharField()
    reason = serializers.CharField(help_text="Why this variant: `experiment`, `targeting`, `default`, ...")
    offer = OfferOut(allow_null=True, help_text="The offer the variant carries, while the offer is active.")


class CueOut(serializers.Serializer):
    """A truthful urgency cue: show `message` as text; count down to `ends_at` when set."""

    rule = serializers.CharField(help_text="Key of the scarcity rule.")
    trigger_type = serializers.CharField(
        help_text="`low_stock`, `social_proof_views`, `social_proof_purchases`, `offer_deadline`, `flash_sale` "
        "or `exclusivity`."
    )
    message = serializers.CharField(help_text="The text to show, already rendered.")
    evidence = serializers.DictField(help_text="The facts behind the claim, with `measured_at`.")
    ends_at = serializers.DateTimeField(allow_null=True, help_text="When the claim stops being true, if it does.")
    offer = serializers.CharField(help_text="SKU of the offer the cue is about.")
    intensity = serializers.CharField()
    timing = serializers.CharField()


class RecommendationOut(serializers.Serializer):
    type = serializers.CharField()
    reason = serializers.CharField()
    confidence = serializers.FloatField()
    applied = serializers.BooleanField(help_text="Applied only above 0.7 confidence.")


class DecisionOut(serializers.Serializer):
    """What to show the session: per slot a variant (or null: keep the page's default content)."""

    session_id = serializers.CharField()
    slots = serializers.DictField(
        child=SlotDecisionOut(allow_null=True),
        help_text="Per requested slot key: the decision, or null to keep the page's default content.",
    )
    scarcity = CueOut(many=True, help_text="Cues that are true now for this session; may be empty.")
    recommendations = RecommendationOut(many=True)
    layout_hints = serializers.DictField(child=serializers.CharField())
    next_best_action = NextBestActionOut()
    unknown_slots = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Session start only: requested slots the site does not have (ignored).",
    )
    server_time = serializers.DateTimeField(
        required=False, help_text="The server's clock: correct countdowns to `ends_at` by it."
    )


# --- answers of the journey endpoints -------------------------------------------------------


class SessionStartOut(serializers.Serializer):
    session_id = serializers.CharField()
    visitor_id = serializers.CharField()
    created = serializers.BooleanField(help_text="false when the session existed already (answered with 200).")
    session_idle_seconds = serializers.IntegerField(help_text="The session is closed after this much inactivity.")
    journey_state = JourneyStateOut()
    decision = DecisionOut()
    conflict = serializers.BooleanField(
        required=False, help_text="Present (true) when a repeat carried other content than the first start."
    )


class StageUpdateOut(serializers.Serializer):
    session_id = serializers.CharField()
    journey_state = JourneyStateOut()
    recommendations = RecommendationOut(many=True)
    scarcity_triggers = CueOut(many=True)
    layout_hints = serializers.DictField(child=serializers.CharField())


class RejectedEventOut(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the event in the batch.")
    event_id = serializers.CharField(allow_null=True)
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class EventsIngestOut(serializers.Serializer):
    accepted = serializers.IntegerField(help_text="Events stored by this call.")
    duplicates = serializers.IntegerField(help_text="Events stored before (same `event_id`, same content).")
    conflicts = serializers.IntegerField(help_text="Repeats of a stored `event_id` with other content (not stored).")
    rejected = RejectedEventOut(many=True, help_text="Invalid events, kept in quarantine; the rest are stored.")


class BatchErrorOut(ErrorOut):
    """A refused batch: nothing was written."""

    field = serializers.CharField(required=False, help_text="The top-level field at fault.")
    index = serializers.IntegerField(required=False, help_text="The oversized event's position.")


# The batch's own refusals, or a query parameter PostgreSQL cannot store (``ApiView``).
BatchBadRequestOut = PolymorphicProxySerializer(
    component_name="BatchBadRequest",
    serializers=[BatchErrorOut, FieldErrors],
    resource_type_field_name=None,
)


class ExposedVariantOut(serializers.Serializer):
    variant = serializers.CharField()
    version = serializers.IntegerField()
    experiment = serializers.CharField(allow_null=True)
    exposed_at = serializers.DateTimeField()


class AttributedOfferOut(serializers.Serializer):
    sku = serializers.CharField()
    name = serializers.CharField()


class AttributedCueOut(serializers.Serializer):
    rule = serializers.CharField()
    trigger_type = serializers.CharField()
    text = serializers.CharField()
    times = serializers.IntegerField()
    first_shown_at = serializers.DateTimeField()
    last_shown_at = serializers.DateTimeField()


class AttributionOut(serializers.Serializer):
    """The journey that led to the conversion, frozen when it happened."""

    journey_path = serializers.CharField(required=False)
    source = serializers.CharField(required=False)
    campaign = serializers.CharField(required=False)
    device_type = serializers.CharField(required=False)
    persona = serializers.CharField(required=False)
    stages = serializers.ListField(child=serializers.CharField(), required=False)
    touchpoints = serializers.IntegerField(required=False)
    variants = ExposedVariantOut(many=True, help_text="Variants the session saw before converting.")
    offers = AttributedOfferOut(many=True)
    scarcity = AttributedCueOut(many=True, help_text="Cues the session saw before converting.")


class ConversionOut(serializers.Serializer):
    conversion_id = serializers.IntegerField()
    event_id = serializers.UUIDField()
    duplicate = serializers.BooleanField(help_text="true when this `event_id` was recorded before (answered with 200).")
    attribution = AttributionOut()
    conflict = serializers.BooleanField(required=False, help_text="Present (true) when a repeat had other content.")


class IdentifyOut(serializers.Serializer):
    unified_journey_id = serializers.UUIDField()
    sessions = serializers.ListField(child=serializers.CharField(), help_text="The person's sessions, oldest first.")
    device_sequence = serializers.ListField(
        child=serializers.ChoiceField(choices=DeviceType.choices), help_text="Devices in order, repeats collapsed."
    )


class ConsentOut(serializers.Serializer):
    visitor_id = serializers.CharField()
    personalization = serializers.BooleanField()
    cross_device = serializers.BooleanField()


# --- a visitor's export ---------------------------------------------------------------------


# "from" is a Python keyword, so these two shapes are built with type().
ExportTransitionOut = type(
    "ExportTransitionOut",
    (serializers.Serializer,),
    {
        "from": serializers.CharField(help_text="Empty for the first stage."),
        "to": serializers.CharField(),
        "trigger_event": serializers.CharField(),
        "engagement": serializers.DictField(),
        "at": serializers.DateTimeField(),
    },
)


class ExportTouchpointOut(serializers.Serializer):
    event_id = serializers.UUIDField()
    sequence = serializers.IntegerField()
    type = serializers.CharField()
    page_url = serializers.CharField()
    page_title = serializers.CharField()
    interaction_type = serializers.CharField()
    interaction_data = serializers.JSONField(allow_null=True)
    engagement_score = serializers.FloatField(allow_null=True)
    duration_seconds = serializers.IntegerField(allow_null=True)
    scroll_depth = serializers.FloatField(allow_null=True)
    click_count = serializers.IntegerField()
    conversion_value = serializers.CharField(help_text="Decimal as a string.")
    device_context = serializers.JSONField(allow_null=True)
    timestamp = serializers.DateTimeField(help_text="The client's timestamp.")
    received_at = serializers.DateTimeField()


class ExportConversionOut(serializers.Serializer):
    event_id = serializers.UUIDField()
    type = serializers.CharField()
    value = serializers.CharField(help_text="Decimal as a string.")
    currency = serializers.CharField()
    funnel_step = serializers.CharField()
    product = serializers.DictField()
    attribution = serializers.DictField()
    at = serializers.DateTimeField()


class ExportSessionOut(serializers.Serializer):
    session_id = serializers.CharField()
    device_type = serializers.CharField()
    device_screen = serializers.CharField()
    source = serializers.CharField()
    returning = serializers.BooleanField()
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)
    current_stage = serializers.CharField()
    journey_path = serializers.CharField()
    persona = PersonaOut()
    conversion_probability = serializers.FloatField()
    entry_point = serializers.DictField()
    utm = serializers.DictField()
    referrer = serializers.DictField()
    intent_signals = serializers.DictField()
    engagement = serializers.DictField()
    exit_point = serializers.JSONField(allow_null=True)
    metadata = serializers.DictField()
    unified_journey_id = serializers.UUIDField(allow_null=True)
    transitions = ExportTransitionOut(many=True)
    touchpoints = ExportTouchpointOut(many=True)
    conversions = ExportConversionOut(many=True)


class ExportConsentOut(serializers.Serializer):
    personalization = serializers.BooleanField()
    personalization_at = serializers.DateTimeField(allow_null=True)
    cross_device = serializers.BooleanField()
    cross_device_at = serializers.DateTimeField(allow_null=True)


ExportPersonaChangeOut = type(
    "ExportPersonaChangeOut",
    (serializers.Serializer,),
    {
        "from": serializers.CharField(),
        "to": serializers.CharField(),
        "confidence": serializers.FloatField(),
        "source": serializers.CharField(),
        "at": serializers.DateTimeField(),
    },
)


class ExportQuarantinedOut(serializers.Serializer):
    endpoint = serializers.CharField()
    reason = serializers.JSONField()
    raw_payload = serializers.JSONField()
    received_at = serializers.DateTimeField()


class ExportConflictOut(serializers.Serializer):
    kind = serializers.CharField()
    client_id = serializers.CharField()
    received_payload = serializers.JSONField()
    at = serializers.DateTimeField()


class VisitorExportOut(serializers.Serializer):
    """Everything held about one visitor (identifiers only as keyed hashes, which are not exported)."""

    visitor_id = serializers.CharField()
    consent = ExportConsentOut()
    persona = PersonaOut()
    persona_history = ExportPersonaChangeOut(many=True)
    scarcity_sensitivity = serializers.FloatField()
    has_cross_device_identity = serializers.BooleanField()
    first_seen_at = serializers.DateTimeField()
    last_seen_at = serializers.DateTimeField()
    sessions = ExportSessionOut(many=True)
    quarantined_events = ExportQuarantinedOut(many=True)
    idempotency_conflicts = ExportConflictOut(many=True)


# --- examples -------------------------------------------------------------------------------
# The contract test's site holds exactly this data (tests/platform/test_api_contract.py), so
# schemathesis sends these requests for real and they reach their 2xx answers.

EXAMPLE_SESSION = "s-123"
EXAMPLE_VISITOR = "v-9"
EXAMPLE_TIME = "2026-11-21T10:00:00Z"

NEXT_BEST_ACTION_EXAMPLE = {
    "recommended_action": "engagement_building",
    "timing": "gradual_building",
    "personalization": "interest_development_content",
    "scarcity_trigger": "subtle_indicators",
    "intent_strength": 0.34,
}
JOURNEY_STATE_EXAMPLE = {
    "current_stage": "awareness",
    "journey_path": "mobile_tiktok_fast_track",
    "conversion_probability": 0.31,
    "persona": {"type": "TechEarlyAdopter", "confidence": 0.85},
    "next_best_action": NEXT_BEST_ACTION_EXAMPLE,
}
CUE_EXAMPLE = {
    "rule": "low-stock",
    "trigger_type": "low_stock",
    "message": "Only 3 left",
    "evidence": {
        "stock_remaining": 3,
        "restock_at": None,
        "measured_at": "2026-11-21T09:58:00Z",
        "computed_at": "2026-11-21T09:59:30Z",
    },
    "ends_at": None,
    "offer": "A1",
    "intensity": "medium",
    "timing": "immediate",
}
DECISION_EXAMPLE = {
    "session_id": EXAMPLE_SESSION,
    "slots": {
        "hero": None,
        "offer_banner": {
            "variant": "offer-banner",
            "version": 1,
            "content": {"headline": "Wireless earbuds"},
            "experiment": None,
            "strategy": "viral_hook_replication",
            "reason": "default",
            "offer": {
                "sku": "A1",
                "name": "Wireless earbuds",
                "price": "50.00",
                "currency": "EUR",
                "discount_percent": "0.00",
                "starts_at": None,
                "ends_at": None,
            },
        },
    },
    "scarcity": [CUE_EXAMPLE],
    "recommendations": [
        {"type": "more_interaction_prompts", "reason": "engagement 0.40 < 0.5", "confidence": 0.9, "applied": True}
    ],
    "layout_hints": {
        "device": "mobile",
        "stage": "awareness",
        "loading_priority": "hero_content_first",
        "interaction_hints": "swipe_indicators",
        "content_density": "high_visual_low_text",
        "performance_budget": "aggressive",
    },
    "next_best_action": NEXT_BEST_ACTION_EXAMPLE,
    "server_time": EXAMPLE_TIME,
}
