"""Journey logic without side effects: path choice, persona, probability, next action, layout.

Every rule here comes from PRODUCT.md section 3 and the original design notes; the
numbers that the notes leave open are documented where they are defined, so an analyst
can read exactly why a session got what it got.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from core import conversion_model
from journeys.models import DeviceType, JourneyPath, Stage

# Per-stage priors of the conversion probability, used until a trained model exists.
# They are the funnel's typical shape for a shop: a visitor who just arrived converts
# rarely, one in the decision stage about half of the time, and one who converted
# has done so (retention is a returning customer, who buys again often).
STAGE_PRIORS: dict[str, float] = {
    Stage.AWARENESS: 0.15,
    Stage.CONSIDERATION: 0.30,
    Stage.DECISION: 0.55,
    Stage.CONVERSION: 0.95,
    Stage.RETENTION: 0.60,
}
RETURNING_UPLIFT = 0.05
INTENT_WEIGHT = 0.30  # how far purchase intent moves the prior: +-0.15 at the extremes
ENGAGEMENT_WEIGHT = 0.20  # same for an engagement score, on stage updates
START_CLAMP = (0.1, 0.9)  # the notes clamp the start-of-session value to this range
RUNNING_CLAMP = (0.01, 0.99)

# Next best action (integration plan, predict_next_intent_action). Intent strength is
# a weighted mean of the signals; a signal the client did not send takes the neutral
# default named here.
INTENT_WEIGHTS = {
    "purchase_intent": 0.4,
    "urgency": 0.2,
    "conversion_probability": 0.3,
    "price_tolerance": 0.1,
}


@dataclass(frozen=True)
class PathRuleSpec:
    """What a JourneyPathRule says, detached from the database for the hot path."""

    priority: int
    name: str
    device_types: tuple[str, ...]
    sources: tuple[str, ...]
    returning: bool | None
    path: str

    def matches(self, *, device_type: str, source: str, returning: bool) -> bool:
        if self.device_types and device_type not in self.device_types:
            return False
        if self.sources and source not in self.sources:
            return False
        return self.returning is None or self.returning == returning


def path_choose(rules: Iterable[PathRuleSpec], *, device_type: str, source: str, returning: bool) -> str:
    """First matching rule's path; the standard funnel when none matches."""
    for rule in rules:
        if rule.matches(device_type=device_type, source=source, returning=returning):
            return rule.path
    return JourneyPath.STANDARD_CONVERSION_FUNNEL


@dataclass(frozen=True)
class PersonaGuess:
    persona: str
    confidence: float


def persona_from_signals(
    *, device_type: str, source: str, campaign: str, intent: Mapping[str, float], returning: bool
) -> PersonaGuess:
    """Rule-based persona when the client sends none (the visitor-intelligence layer).

    Rules, first match wins:
    - price_sensitivity >= 0.7 -> BargainHunter (0.75)
    - research_depth >= 0.6, or desktop from google/referral -> Researcher (0.7)
    - source linkedin, or a campaign naming b2b/business -> BusinessOwner (0.7)
    - mobile from tiktok/instagram/youtube_shorts with a tech campaign -> TechEarlyAdopter (0.7)
    - mobile from tiktok/instagram/youtube_shorts otherwise -> StudentHustler (0.6)
    - returning -> LoyalCustomer (0.6)
    - otherwise -> General (0.3)
    """
    campaign = campaign.lower()
    social = source in {"tiktok", "instagram", "youtube_shorts"}
    if intent.get("price_sensitivity", 0.0) >= 0.7:
        return PersonaGuess("BargainHunter", 0.75)
    if intent.get("research_depth", 0.0) >= 0.6 or (
        device_type == DeviceType.DESKTOP and source in {"google", "referral"}
    ):
        return PersonaGuess("Researcher", 0.7)
    if source == "linkedin" or "b2b" in campaign or "business" in campaign:
        return PersonaGuess("BusinessOwner", 0.7)
    if device_type == DeviceType.MOBILE and social and "tech" in campaign:
        return PersonaGuess("TechEarlyAdopter", 0.7)
    if device_type == DeviceType.MOBILE and social:
        return PersonaGuess("StudentHustler", 0.6)
    if returning:
        return PersonaGuess("LoyalCustomer", 0.6)
    return PersonaGuess("General", 0.3)


def _clamp(value: float, bounds: tuple[float, float]) -> float:
    low, high = bounds
    return max(low, min(high, value))


def conversion_probability_prior(
    *,
    stage: str,
    intent: Mapping[str, float],
    returning: bool,
    engagement_score: float | None = None,
    start: bool,
) -> float:
    """The documented prior: stage prior, moved by intent, returning and engagement.

    ``prior(stage) + 0.30 * (purchase_intent - 0.5) + 0.05 * returning
    + 0.20 * (engagement_score - 0.5)``, each term only when its input is known, then
    clamped to [0.1, 0.9] at session start and to [0.01, 0.99] afterwards.
    """
    value = STAGE_PRIORS[stage]
    if "purchase_intent" in intent:
        value += INTENT_WEIGHT * (intent["purchase_intent"] - 0.5)
    if returning:
        value += RETURNING_UPLIFT
    if engagement_score is not None:
        value += ENGAGEMENT_WEIGHT * (engagement_score - 0.5)
    return round(_clamp(value, START_CLAMP if start else RUNNING_CLAMP), 4)


def conversion_probability(
    *,
    model: Mapping | None,
    features: Mapping,
    intent: Mapping[str, float],
    returning: bool,
    engagement_score: float | None = None,
    start: bool,
) -> float:
    """The served probability: the site's active model (coefficients JSON) where it
    applies, else the documented prior.

    ``features`` is :func:`core.conversion_model.snapshot_features`. The model
    answers for open stages (awareness, consideration, decision); a session in
    conversion or retention has converted and keeps the prior. The model's value is
    clamped like the prior's and rounded to 4 places.
    """
    stage = features["stage"]
    if model is None or stage not in conversion_model.OPEN_STAGES:
        return conversion_probability_prior(
            stage=stage, intent=intent, returning=returning, engagement_score=engagement_score, start=start
        )
    return round(_clamp(conversion_model.score(model, features), START_CLAMP if start else RUNNING_CLAMP), 4)


def intent_strength(*, intent: Mapping[str, float], conversion_probability: float) -> float:
    """Weighted mean of purchase intent, urgency, conversion probability, price tolerance.

    Missing signals: purchase intent defaults to the conversion probability, urgency to
    0, price sensitivity to 0.5 (price tolerance is 1 - price sensitivity).
    """
    values = {
        "purchase_intent": intent.get("purchase_intent", conversion_probability),
        "urgency": intent.get("urgency", intent.get("urgency_level", 0.0)),
        "conversion_probability": conversion_probability,
        "price_tolerance": 1.0 - intent.get("price_sensitivity", 0.5),
    }
    return round(sum(INTENT_WEIGHTS[name] * value for name, value in values.items()), 4)


def next_best_action(*, intent: Mapping[str, float], stage: str, conversion_probability: float) -> dict:
    """Strength > 0.8 in decision -> conversion prompt; > 0.6 -> enhanced personalization; else build."""
    strength = intent_strength(intent=intent, conversion_probability=conversion_probability)
    if strength > 0.8 and stage == Stage.DECISION:
        action = {
            "recommended_action": "immediate_conversion_prompt",
            "timing": "immediate",
            "personalization": "high_intent_conversion_flow",
            "scarcity_trigger": "activate_time_pressure",
        }
    elif strength > 0.6:
        action = {
            "recommended_action": "enhanced_personalization",
            "timing": "within_60_seconds",
            "personalization": "intent_specific_content",
            "scarcity_trigger": "soft_social_proof",
        }
    else:
        action = {
            "recommended_action": "engagement_building",
            "timing": "gradual_building",
            "personalization": "interest_development_content",
            "scarcity_trigger": "subtle_indicators",
        }
    return {**action, "intent_strength": strength}


def layout_hints(*, device_type: str, stage: str) -> dict:
    """Layout hints by device and stage, from the design notes."""
    hints: dict = {"device": device_type, "stage": stage}
    if device_type == DeviceType.MOBILE and stage == Stage.AWARENESS:
        hints.update(
            loading_priority="hero_content_first",
            interaction_hints="swipe_indicators",
            content_density="high_visual_low_text",
            performance_budget="aggressive",
        )
    if device_type == DeviceType.DESKTOP and stage == Stage.CONSIDERATION:
        hints.update(
            layout="comparison_table",
            content_depth="comprehensive",
            navigation="detailed_breadcrumbs",
            interaction="hover_previews",
        )
    if stage == Stage.DECISION:
        hints.update(
            friction_reduction="maximum",
            payment_options="device_native",
            trust_signals="prominent",
            urgency_indicators="enabled",
        )
    return hints
