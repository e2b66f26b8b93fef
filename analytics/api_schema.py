"""What the OpenAPI schema says about the staff analytics API: answers and examples.

Schema only, like :mod:`journeys.api_schema`: the views return the dicts of
:mod:`analytics.reports` and :mod:`analytics.dashboard_api`, never serialized through these.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from journeys.models import DeviceType, JourneyPath

STAFF_AUTH = (
    "Staff only: `Authorization: Token ...` (`manage.py drf_create_token USERNAME`) or a staff session. "
    "Read only and safe to repeat; never answers cross-origin."
)


def rate_field(help_text: str = "") -> serializers.FloatField:
    return serializers.FloatField(allow_null=True, help_text=help_text or "null while undefined.")


class ComparisonOut(serializers.Serializer):
    """:class:`core.statistics.Comparison`: a treatment's metric against the control's."""

    alpha = serializers.FloatField()
    enough_data = serializers.BooleanField(help_text="false: not enough data; no lift or interval, p-values 1.")
    reason = serializers.CharField(allow_null=True, help_text="`no_units`, `zero_baseline` or `zero_variance`.")
    control_mean = rate_field()
    treatment_mean = rate_field()
    relative_lift = rate_field("Treatment / control - 1, a fraction (0.12 = +12%).")
    standard_error = rate_field()
    ci_low = rate_field("Fixed-horizon interval (1 - alpha) of the relative lift.")
    ci_high = rate_field()
    p_value = serializers.FloatField(
        help_text="Welch t test of the relative lift; < alpha exactly when the interval excludes 0."
    )
    significant = serializers.BooleanField()
    sequential_ready = serializers.BooleanField(help_text="false below the documented minimum sample.")
    sequential_low = rate_field("Always-valid interval.")
    sequential_high = rate_field()
    sequential_p_value = serializers.FloatField()
    sequential_significant = serializers.BooleanField()
    chance_to_win = rate_field()


class VariantResultOut(serializers.Serializer):
    key = serializers.CharField()
    control = serializers.BooleanField()
    paused = serializers.BooleanField()
    weight = serializers.FloatField(help_text="Current share of new traffic (0 when paused).")
    exposures = serializers.IntegerField()
    conversions = serializers.IntegerField()
    rate = rate_field("Conversion rate; null without exposures.")
    ci_low = rate_field("95% credible interval of the relative lift over control; null for the control.")
    ci_high = rate_field()
    chance_to_beat_control = rate_field()
    chance_to_be_best = serializers.FloatField()
    expected_loss = serializers.FloatField()
    relative_lift = rate_field()
    p_value = rate_field()
    confidence_low = rate_field("95% confidence interval of the relative lift.")
    confidence_high = rate_field()
    sequential_low = rate_field("Always-valid interval: safe to read at any time.")
    sequential_high = rate_field()
    sequential_p_value = rate_field()
    enough_data = serializers.BooleanField(allow_null=True, help_text="null for the control.")
    reason = serializers.CharField(allow_null=True, help_text="Why there is not enough data, if so.")
    significant = serializers.BooleanField(allow_null=True, help_text="p_value < 0.05.")
    sequential_ready = serializers.BooleanField(allow_null=True)
    sequential_significant = serializers.BooleanField(allow_null=True)
    p_value_holm = rate_field("Holm-adjusted p-value over the active treatments.")
    sequential_p_value_holm = rate_field("Holm-adjusted always-valid p-value (the winner rule's).")
    period_weighted_rate = rate_field("Bandits: the rate weighted by allocation period that the statistics use.")
    revenue = serializers.FloatField(help_text="Revenue of the arm's exposed sessions, in `revenue.currency`.")
    orders = serializers.IntegerField()
    revenue_per_session = rate_field()
    average_order_value = rate_field()
    revenue_per_session_comparison = ComparisonOut(allow_null=True)
    average_order_value_comparison = ComparisonOut(allow_null=True)


class RevenueOut(serializers.Serializer):
    currency = serializers.CharField()
    definition = serializers.CharField()
    other_currency_orders = serializers.IntegerField(help_text="Orders in another currency, left out.")


class SampleSizeOut(serializers.Serializer):
    metric = serializers.CharField()
    mde = serializers.FloatField(help_text="Relative minimum detectable effect (0.1 = +10%).")
    power = serializers.FloatField()
    alpha = serializers.FloatField()
    baseline_rate = rate_field()
    per_arm = serializers.IntegerField(allow_null=True, help_text="Visitors per arm the winner rule needs.")
    more_per_arm = serializers.IntegerField(allow_null=True, help_text="What the smallest active arm still lacks.")
    sequential = serializers.BooleanField()


class SampleRatioOut(serializers.Serializer):
    p_value = rate_field("Chi-square test of exposures against the weights in force.")
    flagged = serializers.BooleanField(help_text="true: the split is off; do not trust the results.")
    weights_since = serializers.DateTimeField(allow_null=True)


class ProposalOut(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField(help_text="`reweight`, `pause_variant` or `stop`.")
    window = serializers.CharField()
    proposed = serializers.DictField()
    expected_impact = serializers.DictField()
    confidence = rate_field()
    guardrail_reason = serializers.CharField()
    created_at = serializers.DateTimeField()


class ExperimentReportOut(serializers.Serializer):
    experiment = serializers.CharField()
    status = serializers.CharField(help_text="`running` while it serves traffic; otherwise its approval status.")
    allocation = serializers.CharField(help_text="`fixed` or `bandit`.")
    primary_goal = serializers.CharField()
    minimum_sample = serializers.IntegerField()
    winner = serializers.CharField(allow_null=True)
    variants = VariantResultOut(many=True, help_text="Control first.")
    period_weighted = serializers.BooleanField()
    revenue = RevenueOut()
    sample_size = SampleSizeOut()
    winner_rule = serializers.CharField()
    srm = SampleRatioOut()
    proposals = ProposalOut(many=True, help_text="The optimizer's proposals waiting for approval.")


class ArmOut(serializers.Serializer):
    sessions = serializers.IntegerField()
    conversions = serializers.IntegerField()
    rate = rate_field()


class LiftOut(serializers.Serializer):
    enough_data = serializers.BooleanField()
    reason = serializers.CharField(allow_null=True)
    relative_lift = rate_field()
    ci_low = rate_field()
    ci_high = rate_field()
    p_value = rate_field()
    p_value_holm = rate_field("Holm-adjusted over the site's rules.")
    sequential_low = rate_field()
    sequential_high = rate_field()
    sequential_p_value = rate_field()
    credible_low = rate_field()
    credible_high = rate_field()
    chance_to_beat_holdout = rate_field()


class RuleEffectOut(serializers.Serializer):
    rule = serializers.CharField()
    name = serializers.CharField()
    trigger_type = serializers.CharField()
    offer = serializers.CharField(help_text="SKU.")
    status = serializers.CharField()
    holdout_share = serializers.FloatField()
    impressions = serializers.IntegerField()
    sessions_shown = serializers.IntegerField()
    exposed = ArmOut()
    holdout = ArmOut()
    lift = LiftOut()


class ScarcityReportOut(serializers.Serializer):
    since = serializers.DateTimeField(allow_null=True)
    until = serializers.DateTimeField(allow_null=True)
    goal = serializers.CharField()
    rules = RuleEffectOut(many=True)


class FiltersOut(serializers.Serializer):
    date_from = serializers.DateField()
    date_to = serializers.DateField()
    site = serializers.IntegerField(allow_null=True)
    device = serializers.ChoiceField(choices=DeviceType.choices, allow_null=True)
    path = serializers.ChoiceField(choices=JourneyPath.choices, allow_null=True)
    persona = serializers.CharField(allow_null=True)


CELL = {"nullable": True, "description": "A number, an ISO date, a decimal string or text."}


@extend_schema_field(
    {
        "oneOf": [
            {
                "type": "object",
                "description": "`shape=tables`: a title, the column names and rows of cells.",
                "properties": {
                    "title": {"type": "string"},
                    "columns": {"type": "array", "items": {"type": "string"}},
                    "rows": {"type": "array", "items": {"type": "array", "items": CELL}},
                },
                "required": ["title", "columns", "rows"],
            },
            {
                "type": "array",
                "description": "`shape=records`: one object per row, keyed by column name.",
                "items": {"type": "object", "additionalProperties": CELL},
            },
        ]
    }
)
class TableField(serializers.JSONField):
    pass


class DashboardPageOut(serializers.Serializer):
    """The tables a dashboard page plots: days are ISO dates, money decimal strings, rates floats or null."""

    filters = FiltersOut(help_text="The filters in force, defaults filled in.")
    tables = serializers.DictField(child=TableField(), help_text="Per table key.")
