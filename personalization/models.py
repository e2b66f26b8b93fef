"""Offers, slots, content variants, experiments, decisions' records, approvals, optimizer proposals.

Approval model. Objects that need approval (variants, offers with a discount,
experiments) carry their editable fields plus a ``published`` snapshot: the content of
the last approved version, which is what the decision engine serves. Editing an object
changes the editable fields and its ``version``; the published snapshot keeps serving
until an approval of the new version copies it over.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

from core.client_ids import client_id_pattern, client_id_rule
from journeys.models import DeviceType, JourneyPath, JourneySession, Site, Stage, Visitor
from personalization.cue_text import template_errors


class Status(models.TextChoices):
    DRAFT = "draft"
    PENDING = "pending"
    APPROVED = "approved"
    LIVE = "live"
    PAUSED = "paused"
    ARCHIVED = "archived"


class Approvable(models.Model):
    """Fields shared by everything that goes live only through an approval."""

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    version = models.PositiveIntegerField(default=1)
    published = models.JSONField(null=True, blank=True, editable=False)
    published_version = models.PositiveIntegerField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True

    @property
    def serving(self) -> bool:
        return self.published is not None and self.status not in (Status.PAUSED, Status.ARCHIVED)


SKU_MAX_LENGTH = 64


class Offer(Approvable):
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="offers")
    name = models.CharField(max_length=200)
    sku = models.CharField(
        max_length=SKU_MAX_LENGTH,
        validators=[RegexValidator(client_id_pattern(SKU_MAX_LENGTH), client_id_rule(SKU_MAX_LENGTH))],
        help_text="The shop's product code; it appears in the stock feed's URL, so letters, digits and - _ . ~ only.",
    )
    price = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="EUR")
    discount_percent = models.DecimalField(max_digits=5, decimal_places=2, default=0)
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    stock_remaining = models.IntegerField(null=True, blank=True)
    stock_updated_at = models.DateTimeField(null=True, blank=True, verbose_name="stock last confirmed")
    stock_confirmed_by = models.CharField(max_length=150, blank=True, help_text="Who confirmed the stock last.")
    restock_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "sku"], name="offer_sku_unique_per_site"),
            models.CheckConstraint(
                condition=Q(discount_percent__gte=0) & Q(discount_percent__lt=100), name="offer_discount_range"
            ),
            models.CheckConstraint(condition=Q(price__gte=0), name="offer_price_non_negative"),
            models.CheckConstraint(
                condition=Q(starts_at__isnull=True) | Q(ends_at__isnull=True) | Q(ends_at__gt=models.F("starts_at")),
                name="offer_ends_after_start",
            ),
            models.CheckConstraint(
                condition=Q(stock_remaining__isnull=True) | Q(stock_remaining__gte=0), name="offer_stock_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.sku})"

    @property
    def needs_approval(self) -> bool:
        return self.discount_percent > 0


class Slot(models.Model):
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="slots")
    key = models.SlugField(max_length=50)
    name = models.CharField(max_length=100)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["site", "key"], name="slot_key_unique_per_site")]

    def __str__(self) -> str:
        return self.key


class ContentVariant(Approvable):
    """A piece of content for a slot. Empty targeting lists mean "any"."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="variants")
    slot = models.ForeignKey(Slot, on_delete=models.CASCADE, related_name="variants")
    key = models.SlugField(max_length=64)
    name = models.CharField(max_length=200)
    payload = models.JSONField(default=dict, help_text="headline, body, image, cta, layout")
    strategy = models.CharField(max_length=64, blank=True)
    is_default = models.BooleanField(default=False, help_text="Shown when nothing else matches, and without consent.")
    target_paths = ArrayField(models.CharField(max_length=50, choices=JourneyPath.choices), default=list, blank=True)
    target_stages = ArrayField(models.CharField(max_length=20, choices=Stage.choices), default=list, blank=True)
    target_devices = ArrayField(models.CharField(max_length=10, choices=DeviceType.choices), default=list, blank=True)
    target_personas = ArrayField(models.CharField(max_length=50), default=list, blank=True)
    target_returning = models.BooleanField(null=True, blank=True)
    offer = models.ForeignKey(Offer, null=True, blank=True, on_delete=models.PROTECT, related_name="variants")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["site", "key"], name="variant_key_unique_per_site")]

    def __str__(self) -> str:
        return self.key


class Allocation(models.TextChoices):
    FIXED = "fixed"
    BANDIT = "bandit"


class ExperimentQuerySet(models.QuerySet):
    def running(self) -> ExperimentQuerySet:
        """Experiments the decision engine runs: approved, not paused or archived, not ended."""
        return self.exclude(published=None).exclude(status__in=[Status.PAUSED, Status.ARCHIVED]).filter(ended_at=None)


class Experiment(Approvable):
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="experiments")
    key = models.SlugField(max_length=64)
    name = models.CharField(max_length=200)
    hypothesis = models.TextField(blank=True)
    slot = models.ForeignKey(Slot, on_delete=models.CASCADE, related_name="experiments")
    traffic_share = models.FloatField(default=1.0, help_text="Share of eligible visitors in the test.")
    allocation = models.CharField(max_length=10, choices=Allocation.choices, default=Allocation.FIXED)
    primary_goal = models.CharField(max_length=50, default="purchase", help_text="A conversion type.")
    minimum_sample = models.PositiveIntegerField(default=1000, help_text="Exposures per arm before a winner.")
    weight_floor = models.FloatField(default=0.05)
    reweight_guardrail = models.FloatField(default=0.2, help_text="Largest automatic weight move per arm.")
    mutually_exclusive = models.BooleanField(
        default=False,
        help_text="May run beside other mutually exclusive experiments on the same slot: the slot's visitors are "
        "split between them by a hash of the visitor, each experiment taking its traffic share of them, so no "
        "visitor is in two. Without it, an experiment is the only one live on its slot.",
    )
    exclusion_start = models.FloatField(
        null=True,
        blank=True,
        editable=False,
        help_text="Where a mutually exclusive experiment's share of the slot's visitors starts, in [0, 1): its "
        "visitors are those whose slot hash is in [start, start + traffic share). Set when approved.",
    )
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    winner = models.ForeignKey(ContentVariant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    objects = ExperimentQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "key"], name="experiment_key_unique_per_site"),
            models.CheckConstraint(
                condition=Q(traffic_share__gt=0) & Q(traffic_share__lte=1), name="experiment_traffic_share"
            ),
            models.CheckConstraint(
                condition=Q(weight_floor__gte=0) & Q(weight_floor__lt=0.5), name="experiment_weight_floor"
            ),
            models.CheckConstraint(
                condition=Q(exclusion_start__isnull=True) | (Q(exclusion_start__gte=0) & Q(exclusion_start__lt=1)),
                name="experiment_exclusion_start_0_1",
            ),
        ]

    def __str__(self) -> str:
        return self.key


class ExperimentArm(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="arms")
    variant = models.ForeignKey(ContentVariant, on_delete=models.PROTECT, related_name="arms")
    is_control = models.BooleanField(default=False)
    weight = models.FloatField(default=0.5)
    is_paused = models.BooleanField(default=False)

    class Meta:
        ordering = ["-is_control", "id"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "variant"], name="arm_variant_unique"),
            models.UniqueConstraint(
                fields=["experiment"], condition=Q(is_control=True), name="arm_one_control_per_experiment"
            ),
            models.CheckConstraint(condition=Q(weight__gte=0) & Q(weight__lte=1), name="arm_weight_0_1"),
        ]

    def __str__(self) -> str:
        return f"{self.experiment_id}:{self.variant_id}"


class Assignment(models.Model):
    """A visitor's sticky arm in an experiment (recorded at first assignment)."""

    # Indexed by ``assignment_unique`` (experiment, visitor): a second index would only cost writes.
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="assignments", db_index=False)
    visitor = models.ForeignKey(Visitor, on_delete=models.CASCADE, related_name="assignments")
    variant = models.ForeignKey(ContentVariant, on_delete=models.CASCADE, related_name="+")
    bucket = models.FloatField()
    assigned_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["experiment", "visitor"], name="assignment_unique")]

    def __str__(self) -> str:
        return f"{self.experiment_id}/{self.visitor_id} -> {self.variant_id}"


class Exposure(models.Model):
    """The first exposure of a session to a variant."""

    # session and experiment are indexed by the composite indexes below that start with them.
    session = models.ForeignKey(JourneySession, on_delete=models.CASCADE, related_name="exposures", db_index=False)
    variant = models.ForeignKey(ContentVariant, on_delete=models.CASCADE, related_name="exposures")
    experiment = models.ForeignKey(
        Experiment, null=True, blank=True, on_delete=models.CASCADE, related_name="exposures", db_index=False
    )
    variant_version = models.PositiveIntegerField()
    exposed_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["session", "variant"], name="exposure_once_per_session")]
        indexes = [models.Index(fields=["experiment", "variant"], name="exposure_experiment_variant")]

    def __str__(self) -> str:
        return f"{self.session_id} saw {self.variant_id}"


class PersonalizationRecord(models.Model):
    """What was delivered to a session and how it went (the seed's personalization_data)."""

    session = models.ForeignKey(JourneySession, on_delete=models.CASCADE, related_name="personalizations")
    personalization_type = models.CharField(max_length=20, default="content")
    strategy = models.CharField(max_length=64, blank=True)
    variant = models.ForeignKey(ContentVariant, null=True, on_delete=models.SET_NULL, related_name="+")
    content_delivered = models.JSONField(default=dict)
    user_response = models.JSONField(default=dict, blank=True)
    engagement_time = models.PositiveIntegerField(default=0)
    conversion_attributed = models.BooleanField(default=False)
    model_version = models.CharField(max_length=32, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["session", "variant"], condition=Q(variant__isnull=False), name="record_once_per_variant"
            )
        ]

    def __str__(self) -> str:
        return f"{self.session_id}: {self.personalization_type} {self.strategy}"


class ApprovalTemplate(models.Model):
    object_type = models.CharField(max_length=30, unique=True)
    name = models.CharField(max_length=100)
    checklist = models.JSONField(default=list, help_text="Items the approver confirms.")

    def __str__(self) -> str:
        return self.name


class RequestStatus(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class ApprovalRequest(models.Model):
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    object_id = models.PositiveBigIntegerField()
    target = GenericForeignKey("content_type", "object_id")
    version = models.PositiveIntegerField()
    snapshot = models.JSONField(help_text="The version submitted, as the approver saw it.")
    previous = models.JSONField(null=True, blank=True, help_text="The published version it replaces.")
    template = models.ForeignKey(ApprovalTemplate, on_delete=models.PROTECT)
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=10, choices=RequestStatus.choices, default=RequestStatus.PENDING)
    checklist = models.JSONField(default=dict, blank=True, help_text="Checklist item -> confirmed.")
    decider = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    comment = models.TextField(blank=True)
    requested_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["content_type", "object_id"],
                condition=Q(status="pending"),
                name="one_pending_request_per_object",
            ),
            models.CheckConstraint(
                condition=Q(decider__isnull=True) | ~Q(decider=models.F("requester")),
                name="requester_never_decides",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.content_type.model} #{self.object_id} v{self.version} ({self.status})"


class AuditLog(models.Model):
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=50)
    content_type = models.ForeignKey(ContentType, null=True, on_delete=models.SET_NULL)
    object_id = models.PositiveBigIntegerField(null=True)
    object_repr = models.CharField(max_length=200)
    changes = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action} {self.object_repr}"


class ProposalKind(models.TextChoices):
    REWEIGHT = "reweight"
    PAUSE_VARIANT = "pause_variant"
    RESUME_VARIANT = "resume_variant"
    STOP = "stop"
    DECLARE_WINNER = "declare_winner"


class ProposalStatus(models.TextChoices):
    AUTO_APPLIED = "auto_applied"
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"


class OptimizationProposal(models.Model):
    """A change to a running experiment that the optimizer made or proposes, or that a
    person requests (``requested_by``; the optimizer's have none)."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="proposals")
    kind = models.CharField(max_length=20, choices=ProposalKind.choices)
    window = models.CharField(max_length=32, help_text="The optimizer window that made it; one per kind.")
    evidence = models.JSONField(default=dict)
    proposed = models.JSONField(default=dict, help_text="New weights, the variant to pause, or the winner.")
    expected_impact = models.JSONField(default=dict, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    status = models.CharField(max_length=15, choices=ProposalStatus.choices)
    guardrail_reason = models.CharField(max_length=200, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The person who asked for it; empty for the optimizer's own proposals.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "kind", "window"], name="proposal_once_per_window"),
        ]

    def __str__(self) -> str:
        return f"{self.experiment.key}: {self.kind} ({self.status})"


# Scarcity and urgency (PRODUCT.md section 6)


class TriggerType(models.TextChoices):
    SOCIAL_PROOF_VIEWS = "social_proof_views"
    SOCIAL_PROOF_PURCHASES = "social_proof_purchases"
    LOW_STOCK = "low_stock"
    OFFER_DEADLINE = "offer_deadline"
    FLASH_SALE = "flash_sale"
    EXCLUSIVITY = "exclusivity"


class Intensity(models.TextChoices):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class CueTiming(models.TextChoices):
    """The earliest stage at which a cue appears (it never appears after ``decision``)."""

    IMMEDIATE = "immediate"
    CONSIDERATION = "consideration"
    DECISION = "decision"


class ScarcityRule(Approvable):
    """An urgency cue that is shown only while the claim in its text is true.

    The wording is an approved template whose numbers come from placeholders filled in
    at display time (``{count}``, ``{stock}``, ``{ends_at}``, ``{window}``, ``{offer}``);
    the template itself may hold no digits. Empty targeting lists mean "any". A
    ``threshold`` or ``window_minutes`` left empty takes the trigger's default
    (``personalization.services.scarcity.config.DEFAULTS``).
    """

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="scarcity_rules")
    key = models.SlugField(max_length=64)
    name = models.CharField(max_length=200)
    trigger_type = models.CharField(max_length=30, choices=TriggerType.choices)
    offer = models.ForeignKey(Offer, on_delete=models.PROTECT, related_name="scarcity_rules")
    threshold = models.PositiveIntegerField(
        null=True, blank=True, help_text="Views/purchases needed, or the stock at or under which it shows."
    )
    window_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Views: counting window. Low stock: a restock due within it blocks the cue. "
        "Deadline: shown only this close to the end. Flash sale: longest sale that counts as a flash sale.",
    )
    minimum_count = models.PositiveIntegerField(default=1, help_text="Social proof is never shown below this count.")
    staleness_seconds = models.PositiveIntegerField(default=300, help_text="Evidence older than this shows no cue.")
    message_template = models.CharField(max_length=200)
    target_stages = ArrayField(models.CharField(max_length=20, choices=Stage.choices), default=list, blank=True)
    target_paths = ArrayField(models.CharField(max_length=50, choices=JourneyPath.choices), default=list, blank=True)
    target_personas = ArrayField(models.CharField(max_length=50), default=list, blank=True)
    min_scarcity_sensitivity = models.FloatField(default=0.0)
    intensity = models.CharField(max_length=10, choices=Intensity.choices, default=Intensity.MEDIUM)
    timing = models.CharField(max_length=15, choices=CueTiming.choices, default=CueTiming.IMMEDIATE)
    holdout_share = models.FloatField(default=0.1, help_text="Share of eligible sessions that never see it.")
    relaunch_cooldown_days = models.PositiveIntegerField(
        default=30, help_text="After the offer ends, relaunching the same or better terms is refused this long."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "key"], name="scarcity_rule_key_unique_per_site"),
            models.CheckConstraint(
                condition=Q(holdout_share__gte=0) & Q(holdout_share__lt=1), name="scarcity_rule_holdout_share"
            ),
            models.CheckConstraint(
                condition=Q(min_scarcity_sensitivity__gte=0) & Q(min_scarcity_sensitivity__lte=1),
                name="scarcity_rule_min_sensitivity_0_1",
            ),
            models.CheckConstraint(condition=Q(staleness_seconds__gt=0), name="scarcity_rule_staleness_positive"),
            models.CheckConstraint(condition=Q(minimum_count__gte=1), name="scarcity_rule_minimum_count_positive"),
            models.CheckConstraint(
                condition=Q(trigger_type__in=TriggerType.values), name="scarcity_rule_trigger_type_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.key

    def clean(self) -> None:
        errors = {}
        if self.offer_id and self.site_id and self.offer.site_id != self.site_id:
            errors["offer"] = "The offer belongs to another site."
        if self.trigger_type and self.message_template:
            problems = template_errors(self.trigger_type, self.message_template)
            if problems:
                errors["message_template"] = problems
        if errors:
            raise ValidationError(errors)


class RuleEvidence(models.Model):
    """The latest numbers behind a rule's claim, as the evidence worker measured them.

    ``measured_at`` is when the facts were true (the stock report's time for stock,
    the count's time for counts); ``computed_at`` is when the worker copied them. The
    same document is cached in Redis for the decision path.
    """

    rule = models.OneToOneField(ScarcityRule, on_delete=models.CASCADE, related_name="evidence")
    rule_version = models.PositiveIntegerField()
    values = models.JSONField(default=dict)
    measured_at = models.DateTimeField(null=True, blank=True)
    computed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.rule_id}: {self.values}"


class HoldoutMembership(models.Model):
    """Whether an eligible session is in a rule's holdout: decided once, then sticky."""

    # Indexed by ``holdout_once_per_rule_session`` (rule, session).
    rule = models.ForeignKey(ScarcityRule, on_delete=models.CASCADE, related_name="holdout_memberships", db_index=False)
    session = models.ForeignKey(JourneySession, on_delete=models.CASCADE, related_name="scarcity_holdouts")
    in_holdout = models.BooleanField()
    bucket = models.FloatField()
    assigned_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "session"], name="holdout_once_per_rule_session")]

    def __str__(self) -> str:
        return f"{self.rule_id}/{self.session_id}: {'holdout' if self.in_holdout else 'exposed'}"


class ClaimLedger(models.Model):
    """Every urgency cue shown: the exact text and the evidence it stood on."""

    # Both indexed by the (session, shown_at) and (rule, shown_at) indexes below.
    session = models.ForeignKey(JourneySession, on_delete=models.CASCADE, related_name="claims", db_index=False)
    rule = models.ForeignKey(ScarcityRule, on_delete=models.PROTECT, related_name="claims", db_index=False)
    rule_version = models.PositiveIntegerField()
    trigger_type = models.CharField(max_length=30, choices=TriggerType.choices)
    text = models.CharField(max_length=300)
    evidence = models.JSONField(default=dict)
    evidence_measured_at = models.DateTimeField()
    ends_at = models.DateTimeField(null=True, blank=True, help_text="A countdown's absolute end.")
    shown_at = models.DateTimeField()
    scored_at = models.DateTimeField(
        null=True, blank=True, help_text="When the visitor's response was learned into their sensitivity."
    )

    class Meta:
        ordering = ["-shown_at", "-id"]
        indexes = [
            models.Index(fields=["rule", "shown_at"], name="claim_rule_shown"),
            models.Index(fields=["session", "shown_at"], name="claim_session_shown"),
            models.Index(fields=["shown_at"], name="claim_unscored", condition=Q(scored_at__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"{self.session_id}: {self.text}"


class MonitorFlagKind(models.TextChoices):
    STOCK_NEVER_MOVED = "stock_never_moved"
    COUNTDOWN_AFTER_END = "countdown_after_end"


class MonitorFlag(models.Model):
    """Something the scarcity monitor wants a person to look at; one open flag per rule and kind."""

    rule = models.ForeignKey(ScarcityRule, on_delete=models.CASCADE, related_name="monitor_flags")
    kind = models.CharField(max_length=30, choices=MonitorFlagKind.choices)
    details = models.JSONField(default=dict)
    raised_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    resolved = models.BooleanField(default=False)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["resolved", "-raised_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "kind"], condition=Q(resolved=False), name="monitor_flag_one_open_per_rule_kind"
            )
        ]

    def __str__(self) -> str:
        return f"{self.rule_id}: {self.kind}{' (resolved)' if self.resolved else ''}"
