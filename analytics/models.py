"""Analytics tables: the trained conversion model and the dashboards' rollups."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from journeys.models import Site


class ConversionModel(models.Model):
    """A logistic conversion model of one site, stored as coefficients, never as a pickle.

    ``coefficients`` holds everything scoring needs: the feature encoding, the intercept
    and one weight per encoded feature. ``auc`` and ``brier`` are measured on sessions
    held out from training. At most one model per site is active; a new one is activated
    only if it beats the active one on the same held-out sessions.
    """

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="conversion_models")
    version = models.PositiveIntegerField()
    coefficients = models.JSONField()
    training_size = models.PositiveIntegerField()
    holdout_size = models.PositiveIntegerField()
    auc = models.FloatField()
    brier = models.FloatField()
    baseline_auc = models.FloatField(
        null=True, blank=True, help_text="AUC of the model active at training time, on the same held-out sessions."
    )
    baseline_brier = models.FloatField(null=True, blank=True)
    is_active = models.BooleanField(default=False)
    trained_from = models.DateTimeField(help_text="Earliest session start in the training data.")
    trained_to = models.DateTimeField(help_text="Latest session start in the training data.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["site_id", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["site", "version"], name="conversion_model_version_unique"),
            models.UniqueConstraint(fields=["site"], condition=Q(is_active=True), name="conversion_model_one_active"),
            models.CheckConstraint(condition=Q(auc__gte=0) & Q(auc__lte=1), name="conversion_model_auc_0_1"),
            models.CheckConstraint(condition=Q(brier__gte=0) & Q(brier__lte=1), name="conversion_model_brier_0_1"),
        ]

    def __str__(self) -> str:
        return f"{self.site} v{self.version} (AUC {self.auc:.3f})"


# Rollups (PRODUCT.md section 7). Every rollup row is keyed by (site, day, ...) where
# ``day`` is the UTC day its session started: a session, its stage moves, conversions,
# exposures, cues and personalizations all count on the day the session started, so a
# rate's numerator and denominator always describe the same sessions. How the tables are
# kept exact is in ``analytics.rollups``.


class RollupDirtyDay(models.Model):
    """A (site, day) whose rollups must be recomputed from raw rows.

    Appended by statement-level triggers on the raw tables (see migration
    ``0003_rollup_triggers``) in the same transaction as the change, so a mark is visible
    exactly when the change is. Plain appends, no unique key: writers never wait on one
    another; the rollup run consumes the marks with ``DELETE ... RETURNING``.
    """

    site_id = models.BigIntegerField()
    day = models.DateField()
    marked_at = models.DateTimeField(db_default=models.functions.Now())

    def __str__(self) -> str:
        return f"{self.site_id} {self.day}"


class RollupRun(models.Model):
    """One committed rollup run: how many (site, day) keys it recomputed."""

    keys = models.PositiveIntegerField()
    seconds = models.FloatField()
    finished_at = models.DateTimeField()

    class Meta:
        ordering = ["-finished_at", "-id"]

    def __str__(self) -> str:
        return f"{self.finished_at:%Y-%m-%d %H:%M:%S} {self.keys} keys"


class SessionDaily(models.Model):
    """Sessions per site, start day, path, device and persona, with how far they got.

    ``max_<stage>`` counts sessions whose furthest stage was that stage, so "reached at
    least decision" is ``max_decision + max_conversion + max_retention``.
    ``converted_sessions`` have at least one conversion event; ``conversions`` and
    ``revenue`` count and sum all of them. Time to convert runs from the session start
    to its first conversion: a sum and a count (so means combine across rows) and a
    histogram.
    """

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    journey_path = models.CharField(max_length=50)
    device_type = models.CharField(max_length=10)
    persona = models.CharField(max_length=50)
    sessions = models.PositiveIntegerField()
    returning_sessions = models.PositiveIntegerField()
    cross_device_sessions = models.PositiveIntegerField()
    touchpoints = models.BigIntegerField()
    max_awareness = models.PositiveIntegerField()
    max_consideration = models.PositiveIntegerField()
    max_decision = models.PositiveIntegerField()
    max_conversion = models.PositiveIntegerField()
    max_retention = models.PositiveIntegerField()
    converted_sessions = models.PositiveIntegerField()
    conversions = models.PositiveIntegerField()
    revenue = models.DecimalField(max_digits=16, decimal_places=2)
    ttc_seconds_sum = models.BigIntegerField()
    ttc_count = models.PositiveIntegerField()
    ttc_under_1_min = models.PositiveIntegerField()
    ttc_1_to_10_min = models.PositiveIntegerField()
    ttc_10_to_60_min = models.PositiveIntegerField()
    ttc_1_to_24_h = models.PositiveIntegerField()
    ttc_over_24_h = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["site", "day", "journey_path", "device_type", "persona"], name="session_daily_key"
            )
        ]
        indexes = [models.Index(fields=["day"], name="session_daily_day")]

    def __str__(self) -> str:
        return f"{self.site_id} {self.day} {self.journey_path}/{self.device_type}/{self.persona}: {self.sessions}"


class StageFlowDaily(models.Model):
    """Stage transitions (``from_stage`` empty = the session's start) per start day and dimensions."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    journey_path = models.CharField(max_length=50)
    device_type = models.CharField(max_length=10)
    persona = models.CharField(max_length=50)
    from_stage = models.CharField(max_length=20)
    to_stage = models.CharField(max_length=20)
    transitions = models.PositiveIntegerField()
    sessions = models.PositiveIntegerField(help_text="Distinct sessions that made this move.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["site", "day", "journey_path", "device_type", "persona", "from_stage", "to_stage"],
                name="stage_flow_daily_key",
            )
        ]
        indexes = [models.Index(fields=["day"], name="stage_flow_daily_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.journey_path}: {self.from_stage or 'start'} -> {self.to_stage} ({self.transitions})"


class VariantDaily(models.Model):
    """Exposed sessions per variant (and experiment, if any) and start day.

    ``conversions`` are exposed sessions with a conversion at or after their exposure;
    ``revenue`` sums those conversions.
    """

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    experiment = models.ForeignKey(
        "personalization.Experiment", null=True, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    variant = models.ForeignKey(
        "personalization.ContentVariant", on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    journey_path = models.CharField(max_length=50)
    device_type = models.CharField(max_length=10)
    persona = models.CharField(max_length=50)
    exposures = models.PositiveIntegerField()
    conversions = models.PositiveIntegerField()
    revenue = models.DecimalField(max_digits=16, decimal_places=2)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["site", "day", "experiment", "variant", "journey_path", "device_type", "persona"],
                name="variant_daily_key",
                nulls_distinct=False,
            )
        ]
        indexes = [models.Index(fields=["day"], name="variant_daily_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.variant_id}: {self.conversions}/{self.exposures}"


class ScarcityRuleDaily(models.Model):
    """Per scarcity rule and start day: cues shown, and eligible sessions exposed vs held out.

    A member converts when it has a conversion at or after it became eligible
    (``HoldoutMembership.assigned_at``), as in ``scarcity_effectiveness``.
    """

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    rule = models.ForeignKey(
        "personalization.ScarcityRule", on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    journey_path = models.CharField(max_length=50)
    device_type = models.CharField(max_length=10)
    persona = models.CharField(max_length=50)
    impressions = models.PositiveIntegerField()
    sessions_shown = models.PositiveIntegerField()
    exposed_sessions = models.PositiveIntegerField()
    exposed_conversions = models.PositiveIntegerField()
    holdout_sessions = models.PositiveIntegerField()
    holdout_conversions = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["site", "day", "rule", "journey_path", "device_type", "persona"], name="scarcity_daily_key"
            )
        ]
        indexes = [models.Index(fields=["day"], name="scarcity_daily_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.rule_id}: {self.impressions} shown"


class PersonalizationDaily(models.Model):
    """Personalizations delivered per type, strategy and start day, and how they went."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    personalization_type = models.CharField(max_length=20)
    strategy = models.CharField(max_length=64)
    journey_path = models.CharField(max_length=50)
    device_type = models.CharField(max_length=10)
    persona = models.CharField(max_length=50)
    applications = models.PositiveIntegerField()
    engagement_time = models.BigIntegerField(help_text="Seconds, summed.")
    conversions = models.PositiveIntegerField(help_text="Records with conversion_attributed.")
    confidence_sum = models.DecimalField(
        max_digits=18, decimal_places=6, help_text="Exact sum (numeric), so it is the same in any order."
    )
    confidence_count = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["site", "day", "personalization_type", "strategy", "journey_path", "device_type", "persona"],
                name="personalization_daily_key",
            )
        ]
        indexes = [models.Index(fields=["day"], name="personalization_daily_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.personalization_type}/{self.strategy}: {self.applications}"


class AutomatedSessionDaily(models.Model):
    """Sessions of crawlers and headless browsers per start day, dimensions and reason
    (``JourneySession.automated``): the sessions every other rollup leaves out (unless
    ``AUTOMATED_SESSIONS_EXCLUDED`` is off), counted here so the overview shows them apart."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    journey_path = models.CharField(max_length=50)
    device_type = models.CharField(max_length=10)
    persona = models.CharField(max_length=50)
    reason = models.CharField(max_length=50)
    sessions = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["site", "day", "journey_path", "device_type", "persona", "reason"],
                name="automated_session_daily_key",
            )
        ]
        indexes = [models.Index(fields=["day"], name="automated_session_daily_day")]

    def __str__(self) -> str:
        return f"{self.site_id} {self.day} {self.reason}: {self.sessions}"
