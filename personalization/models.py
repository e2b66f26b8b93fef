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
from django.db import models
from django.db.models import Q

from journeys.models import DeviceType, JourneyPath, JourneySession, Site, Stage, Visitor


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


class Offer(Approvable):
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="offers")
    name = models.CharField(max_length=200)
    sku = models.CharField(max_length=64)
    price = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="EUR")
    discount_percent = models.DecimalField(max_digits=5, decimal_places=2, default=0)
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    stock_remaining = models.IntegerField(null=True, blank=True)
    stock_updated_at = models.DateTimeField(null=True, blank=True)
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
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    winner = models.ForeignKey(ContentVariant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "key"], name="experiment_key_unique_per_site"),
            models.CheckConstraint(
                condition=Q(traffic_share__gt=0) & Q(traffic_share__lte=1), name="experiment_traffic_share"
            ),
            models.CheckConstraint(
                condition=Q(weight_floor__gte=0) & Q(weight_floor__lt=0.5), name="experiment_weight_floor"
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

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="assignments")
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

    session = models.ForeignKey(JourneySession, on_delete=models.CASCADE, related_name="exposures")
    variant = models.ForeignKey(ContentVariant, on_delete=models.CASCADE, related_name="exposures")
    experiment = models.ForeignKey(
        Experiment, null=True, blank=True, on_delete=models.CASCADE, related_name="exposures"
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
    STOP = "stop"
    DECLARE_WINNER = "declare_winner"


class ProposalStatus(models.TextChoices):
    AUTO_APPLIED = "auto_applied"
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"


class OptimizationProposal(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="proposals")
    kind = models.CharField(max_length=20, choices=ProposalKind.choices)
    window = models.CharField(max_length=32, help_text="The optimizer window that made it; one per kind.")
    evidence = models.JSONField(default=dict)
    proposed = models.JSONField(default=dict, help_text="New weights, the variant to pause, or the winner.")
    expected_impact = models.JSONField(default=dict, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    status = models.CharField(max_length=15, choices=ProposalStatus.choices)
    guardrail_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "kind", "window"], name="proposal_once_per_window"),
        ]

    def __str__(self) -> str:
        return f"{self.experiment.key}: {self.kind} ({self.status})"
