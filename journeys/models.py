"""Tables of the journey domain: sites, visitors, sessions and what happens in them."""

from __future__ import annotations

import secrets
import uuid

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import BrinIndex
from django.db import models
from django.db.models import Q


class Stage(models.TextChoices):
    AWARENESS = "awareness"
    CONSIDERATION = "consideration"
    DECISION = "decision"
    CONVERSION = "conversion"
    RETENTION = "retention"


STAGE_ORDER = {stage.value: index for index, stage in enumerate(Stage)}


class DeviceType(models.TextChoices):
    MOBILE = "mobile"
    TABLET = "tablet"
    DESKTOP = "desktop"


class JourneyPath(models.TextChoices):
    MOBILE_TIKTOK_FAST_TRACK = "mobile_tiktok_fast_track"
    DESKTOP_RESEARCH_DEEP = "desktop_research_deep"
    RETURNING_VISITOR_PERSONALIZED = "returning_visitor_personalized"
    STANDARD_CONVERSION_FUNNEL = "standard_conversion_funnel"


class IdentifyMethod(models.TextChoices):
    EMAIL = "email"
    PHONE = "phone"
    USER_ID = "user_id"


def new_public_key() -> str:
    return f"pk_{secrets.token_urlsafe(24)}"


class Site(models.Model):
    """A shop or landing page: its public key for browsers, its secret key for its backend.

    Only a SHA-256 of the secret key is kept (the key is 32 random bytes, so a plain hash
    is as good as a slow one); the key itself is shown once, when made or rotated.
    """

    name = models.CharField(max_length=200)
    domain = models.CharField(max_length=253)
    public_key = models.CharField(max_length=64, unique=True, default=new_public_key, editable=False)
    allowed_origins = ArrayField(
        models.CharField(max_length=255),
        default=list,
        blank=True,
        help_text="Origins whose pages may call the browser API, e.g. https://shop.example (comma-separated).",
    )
    secret_key_hash = models.CharField(max_length=64, blank=True, editable=False)
    secret_key_hint = models.CharField(max_length=12, blank=True, editable=False)
    secret_key_rotated_at = models.DateTimeField(null=True, blank=True, editable=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["domain"], name="site_domain_unique"),
            models.UniqueConstraint(
                fields=["secret_key_hash"], condition=~Q(secret_key_hash=""), name="site_secret_key_hash_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.domain})"


class Visitor(models.Model):
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="visitors")
    visitor_id = models.CharField(max_length=100)
    consent_personalization = models.BooleanField(default=False)
    consent_personalization_at = models.DateTimeField(null=True, blank=True)
    consent_cross_device = models.BooleanField(default=False)
    consent_cross_device_at = models.DateTimeField(null=True, blank=True)
    persona = models.CharField(max_length=50, blank=True)
    persona_confidence = models.FloatField(null=True, blank=True)
    scarcity_sensitivity = models.FloatField(default=0.5)
    user_key = models.CharField(max_length=64, blank=True, db_index=True, help_text="Keyed hash of an identifier.")
    session_count = models.PositiveIntegerField(default=0)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "visitor_id"], name="visitor_unique_per_site"),
            models.CheckConstraint(
                condition=Q(scarcity_sensitivity__gte=0) & Q(scarcity_sensitivity__lte=1),
                name="visitor_scarcity_sensitivity_0_1",
            ),
            models.CheckConstraint(
                condition=Q(persona_confidence__isnull=True)
                | (Q(persona_confidence__gte=0) & Q(persona_confidence__lte=1)),
                name="visitor_persona_confidence_0_1",
            ),
        ]
        # Privacy requests (GDPR articles 15 and 17): held by the "Privacy officers" role
        # and superusers only, not by every staff account (journeys.roles).
        permissions = [
            ("export_visitor", "Can export everything held about a visitor"),
            ("erase_visitor", "Can erase everything held about a visitor"),
        ]

    def __str__(self) -> str:
        return self.visitor_id


class PersonaChange(models.Model):
    """Persona evolution: one row each time a visitor's persona changes between sessions."""

    visitor = models.ForeignKey(Visitor, on_delete=models.CASCADE, related_name="persona_changes")
    session = models.ForeignKey("JourneySession", on_delete=models.CASCADE, related_name="+")
    from_persona = models.CharField(max_length=50, blank=True)
    to_persona = models.CharField(max_length=50)
    confidence = models.FloatField()
    source = models.CharField(max_length=20)
    changed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["changed_at", "id"]

    def __str__(self) -> str:
        return f"{self.from_persona or '-'} -> {self.to_persona}"


class CrossDeviceLink(models.Model):
    """A unified journey: the sessions one person had across devices."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="cross_device_links")
    unified_journey_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    identifier_hash = models.CharField(max_length=64)
    method = models.CharField(max_length=10, choices=IdentifyMethod.choices)
    device_sequence = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "identifier_hash"], name="cross_device_identifier_unique"),
        ]

    def __str__(self) -> str:
        return str(self.unified_journey_id)


class JourneySession(models.Model):
    # Indexed by (site, session_id) and (site, started_at), which start with it.
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="sessions", db_index=False)
    visitor = models.ForeignKey(Visitor, on_delete=models.CASCADE, related_name="sessions")
    session_id = models.CharField(max_length=100)
    persona_type = models.CharField(max_length=50, blank=True)
    persona_confidence = models.FloatField(null=True, blank=True)
    persona_source = models.CharField(max_length=20, blank=True)
    device_type = models.CharField(max_length=10, choices=DeviceType.choices)
    device_screen = models.CharField(max_length=20, blank=True)
    device_fingerprint_hash = models.CharField(max_length=64, blank=True)
    source = models.CharField(max_length=50, blank=True, help_text="Entry source, lower-cased.")
    returning = models.BooleanField(default=False)
    started_at = models.DateTimeField(db_index=True)
    last_activity_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    current_stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.AWARENESS)
    max_stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.AWARENESS)
    journey_path = models.CharField(max_length=50, choices=JourneyPath.choices)
    conversion_probability = models.FloatField()
    total_touchpoints = models.PositiveIntegerField(default=0)
    total_session_time = models.PositiveIntegerField(default=0, help_text="Seconds.")
    entry_point = models.JSONField(default=dict, blank=True)
    utm = models.JSONField(default=dict, blank=True)
    referrer = models.JSONField(default=dict, blank=True)
    intent_signals = models.JSONField(default=dict, blank=True)
    engagement = models.JSONField(default=dict, blank=True)
    exit_point = models.JSONField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    cross_device_link = models.ForeignKey(
        CrossDeviceLink, null=True, blank=True, on_delete=models.SET_NULL, related_name="sessions"
    )
    request_hash = models.CharField(max_length=64, help_text="Hash of the start request, for idempotency.")
    automated = models.CharField(
        max_length=50,
        blank=True,
        default="",
        db_default="",
        help_text="Why a program, not a person, started it (a crawler or headless browser); empty for a person. "
        "Left out of statistics unless AUTOMATED_SESSIONS_EXCLUDED is off.",
    )
    client_hash = models.CharField(
        max_length=64,
        blank=True,
        default="",
        db_default="",
        help_text="Keyed hash of the client address at start (IPv6: its /64), never the address: social proof "
        "counts one person per address.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "session_id"], name="session_id_unique_per_site"),
            models.CheckConstraint(
                condition=Q(conversion_probability__gte=0) & Q(conversion_probability__lte=1),
                name="session_conversion_probability_0_1",
            ),
            models.CheckConstraint(
                condition=Q(persona_confidence__isnull=True)
                | (Q(persona_confidence__gte=0) & Q(persona_confidence__lte=1)),
                name="session_persona_confidence_0_1",
            ),
            models.CheckConstraint(condition=Q(current_stage__in=Stage.values), name="session_stage_valid"),
            models.CheckConstraint(condition=Q(device_type__in=DeviceType.values), name="session_device_valid"),
        ]
        indexes = [
            models.Index(fields=["site", "-started_at"], name="session_site_started"),
            models.Index(fields=["last_activity_at"], name="session_open_activity", condition=Q(ended_at__isnull=True)),
            # The few automated sessions, which statistics leave out (``human_sessions``).
            models.Index(fields=["id"], name="session_automated", condition=~Q(automated="")),
        ]

    def __str__(self) -> str:
        return self.session_id


class Touchpoint(models.Model):
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    session = models.ForeignKey(JourneySession, on_delete=models.CASCADE, related_name="touchpoints")
    event_id = models.UUIDField()
    sequence = models.PositiveIntegerField()
    type = models.CharField(max_length=50)
    page_url = models.TextField(blank=True)
    page_title = models.CharField(max_length=255, blank=True)
    interaction_type = models.CharField(max_length=50, blank=True)
    interaction_data = models.JSONField(null=True, blank=True)
    engagement_score = models.FloatField(null=True, blank=True)
    duration_seconds = models.PositiveIntegerField(null=True, blank=True)
    scroll_depth = models.FloatField(null=True, blank=True)
    click_count = models.PositiveIntegerField(default=0)
    conversion_value = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    device_context = models.JSONField(null=True, blank=True)
    metadata = models.JSONField(null=True, blank=True, help_text="Fields the client sent beyond the contract.")
    client_timestamp = models.DateTimeField()
    received_at = models.DateTimeField()
    payload_hash = models.CharField(max_length=32)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "event_id"], name="touchpoint_event_id_unique_per_site"),
            models.CheckConstraint(
                condition=Q(engagement_score__isnull=True) | (Q(engagement_score__gte=0) & Q(engagement_score__lte=1)),
                name="touchpoint_engagement_0_1",
            ),
            models.CheckConstraint(
                condition=Q(scroll_depth__isnull=True) | (Q(scroll_depth__gte=0) & Q(scroll_depth__lte=1)),
                name="touchpoint_scroll_depth_0_1",
            ),
        ]
        indexes = [
            models.Index(fields=["session", "sequence"], name="touchpoint_session_seq"),
            # Touchpoints arrive in time order, so a BRIN index answers time ranges (the
            # retention purge, exports) for a few kilobytes instead of a B-tree's gigabytes.
            BrinIndex(fields=["received_at"], name="touchpoint_received_brin", autosummarize=True),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class StageTransition(models.Model):
    session = models.ForeignKey(JourneySession, on_delete=models.CASCADE, related_name="transitions")
    from_stage = models.CharField(max_length=20, choices=Stage.choices, blank=True)
    to_stage = models.CharField(max_length=20, choices=Stage.choices)
    trigger_event = models.CharField(max_length=100, blank=True)
    engagement = models.JSONField(default=dict, blank=True)
    context = models.JSONField(default=dict, blank=True)
    conversion_probability = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.CheckConstraint(condition=Q(to_stage__in=Stage.values), name="transition_stage_valid")]

    def __str__(self) -> str:
        return f"{self.from_stage or 'start'} -> {self.to_stage}"


class ConversionEvent(models.Model):
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    session = models.ForeignKey(JourneySession, on_delete=models.CASCADE, related_name="conversions")
    event_id = models.UUIDField()
    type = models.CharField(max_length=50)
    value = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    currency = models.CharField(max_length=3, default="EUR")
    funnel_step = models.CharField(max_length=50, blank=True)
    product = models.JSONField(default=dict, blank=True)
    attribution = models.JSONField(default=dict, blank=True)
    payload_hash = models.CharField(max_length=32)
    converted_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "event_id"], name="conversion_event_id_unique_per_site"),
            models.CheckConstraint(condition=Q(value__gte=0), name="conversion_value_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.value} {self.currency}"


class JourneyPathRule(models.Model):
    """An ordered rule choosing a session's journey path at start.

    A rule matches when every condition it sets holds; empty lists and a null
    ``returning`` mean "any". Site-specific rules are tried before global ones
    (``site`` empty), each group by ascending priority; the first match wins.
    """

    site = models.ForeignKey(Site, null=True, blank=True, on_delete=models.CASCADE, related_name="path_rules")
    priority = models.PositiveIntegerField()
    name = models.CharField(max_length=100)
    device_types = ArrayField(models.CharField(max_length=10, choices=DeviceType.choices), default=list, blank=True)
    sources = ArrayField(models.CharField(max_length=50), default=list, blank=True)
    returning = models.BooleanField(null=True, blank=True)
    path = models.CharField(max_length=50, choices=JourneyPath.choices)
    is_active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["site_id", "priority"]
        constraints = [
            models.UniqueConstraint(fields=["site", "priority"], name="path_rule_priority_unique_per_site"),
            models.UniqueConstraint(
                fields=["priority"], condition=Q(site__isnull=True), name="path_rule_priority_unique_global"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.priority}: {self.name} -> {self.path}"


class QuarantinedEvent(models.Model):
    """A client event that failed validation; kept with its raw payload so nothing is lost."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="quarantined_events")
    endpoint = models.CharField(max_length=50)
    event_id = models.CharField(max_length=100, blank=True)
    batch_index = models.PositiveIntegerField(null=True, blank=True)
    raw_payload = models.JSONField(null=True, blank=True)
    raw_text = models.TextField(blank=True)
    reason = models.JSONField()
    received_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.endpoint} #{self.batch_index} {self.event_id}"


class IdempotencyConflict(models.Model):
    """A retry that reused a client id with a different payload. The first write stands."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="idempotency_conflicts")
    kind = models.CharField(max_length=20)
    client_id = models.CharField(max_length=100)
    stored_hash = models.CharField(max_length=64)
    received_hash = models.CharField(max_length=64)
    received_payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.client_id}"


class ErasedSession(models.Model):
    """A session whose visitor was erased, known only by a keyed hash of its id.

    A page left open keeps sending events for it; they are refused like those of any
    unknown session but, unlike those, not kept in quarantine: that would store the
    erased visitor's data again, where no export or erasure of the visitor finds it.
    """

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    session_hash = models.CharField(max_length=64)
    erased_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["site", "session_hash"], name="erased_session_once")]

    def __str__(self) -> str:
        return f"{self.site_id} {self.session_hash[:12]}"
