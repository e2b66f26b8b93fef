"""Validation at display time: whether a rule's claim is true for a session now.

:func:`cue_validate` is a pure function of the rule's approved configuration, the
cached evidence, the session's facts and ``now``. A cue shows only when all of these hold:

- the rule is live and approved (its *published* snapshot; the text is that
  version's template), its offer is live, started and not ended;
- the session's stage is inside the rule's timing (immediate: awareness to
  decision; consideration: consideration and decision; decision: decision only -
  never after a conversion) and the rule's target stages, paths and personas
  (personas only with personalization consent);
- the visitor's scarcity sensitivity (:func:`~personalization.services.scarcity.sensitivity.sensitivity_for`)
  is at least the rule's minimum and the floor of its intensity (:data:`INTENSITY_FLOOR`);
- the evidence is fresh: both its measurement and its copy are at most the rule's
  ``staleness_seconds`` old, and it is about the rule's current offer and window;
- the claim is true (:func:`claim_check`): social proof count >= max(threshold,
  minimum count), stated with its window; ``0 < stock <= threshold`` with no
  restock due within the window; the deadline in the future and within the window;
  a flash sale is an approved (discounted) offer with a start and an end at most
  the window apart, running now; exclusivity as above;
- the session is not in the rule's holdout: ``sha256(rule id, session id)`` under
  the holdout share decides once, the answer is recorded
  (:class:`HoldoutMembership`) and is sticky from then on.

:func:`rules_preview` applies the same check to rules' approved versions and drafts, for
the admin.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from journeys.models import JourneySession, Stage
from personalization.cue_text import format_ends_at, render, window_phrase
from personalization.models import CueTiming, Offer, ScarcityRule, TriggerType
from personalization.selectors import VariantConfig
from personalization.services.approvals import snapshot
from personalization.services.scarcity.config import RuleConfig, as_datetime, offer_facts, rule_config
from personalization.services.scarcity.evidence import evidence_latest, today_start
from personalization.services.scarcity.sensitivity import sensitivity_for

# The stages a cue may appear in, by the rule's timing. Nothing after ``decision``: a
# visitor who converted is not pressed any more.
TIMING_STAGES = {
    CueTiming.IMMEDIATE: frozenset({Stage.AWARENESS, Stage.CONSIDERATION, Stage.DECISION}),
    CueTiming.CONSIDERATION: frozenset({Stage.CONSIDERATION, Stage.DECISION}),
    CueTiming.DECISION: frozenset({Stage.DECISION}),
}

# Sensitivity gates intensity: a cue of this intensity needs at least this sensitivity
# (besides the rule's own minimum). The default 0.5 admits low and medium cues.
INTENSITY_FLOOR = {"low": 0.0, "medium": 0.3, "high": 0.6}


CLOCK_SKEW = timedelta(seconds=5)  # evidence "measured" further in the future is refused


@dataclass(frozen=True)
class Viewer:
    """The facts of a session that a cue may depend on."""

    session_id: str
    stage: str
    path: str
    persona: str
    device: str
    returning: bool
    consent: bool
    sensitivity: float


@dataclass(frozen=True)
class Claim:
    """Whether a rule's claim holds on its evidence: the text and why, or why not."""

    true: bool
    reason: str
    text: str = ""
    values: dict = field(default_factory=dict)
    measured_at: datetime | None = None
    computed_at: datetime | None = None
    ends_at: datetime | None = None


@dataclass(frozen=True)
class Verdict:
    rule: RuleConfig
    eligible: bool  # targeted and true: the session is in the rule's population
    shown: bool  # eligible and not in the (hashed) holdout
    reason: str
    claim: Claim | None = None
    bucket: float | None = None


def viewer_for(session: JourneySession) -> Viewer:
    visitor = session.visitor
    consent = bool(visitor.consent_personalization)
    return Viewer(
        session_id=session.session_id,
        stage=session.current_stage,
        path=session.journey_path,
        persona=session.persona_type if consent else "",
        device=session.device_type,
        returning=session.returning,
        consent=consent,
        sensitivity=sensitivity_for(
            consent=consent,
            learned=visitor.scarcity_sensitivity,
            persona=session.persona_type,
            path=session.journey_path,
        ),
    )


def holdout_bucket(rule_id: int, session_id: str) -> float:
    """A uniform number in [0, 1) from the rule and the session: the same in every process."""
    digest = hashlib.sha256(f"scarcity-holdout:{rule_id}:{session_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def eligibility_refusal(rule: RuleConfig, viewer: Viewer) -> str | None:
    """Why the rule does not target this session (None when it does)."""
    if viewer.stage not in TIMING_STAGES[rule.timing]:
        return f"stage {viewer.stage} is outside the rule's timing ({rule.timing})"
    if rule.stages and viewer.stage not in rule.stages:
        return f"stage {viewer.stage} is not targeted"
    if rule.paths and viewer.path not in rule.paths:
        return f"path {viewer.path} is not targeted"
    if rule.personas and (not viewer.consent or viewer.persona not in rule.personas):
        return "persona not targeted" if viewer.consent else "persona targeting needs personalization consent"
    needed = max(rule.min_sensitivity, INTENSITY_FLOOR.get(rule.intensity, 0.0))
    if viewer.sensitivity < needed:
        return f"scarcity sensitivity {viewer.sensitivity:.2f} is under the {needed:.2f} this rule needs"
    return None


def _at(moment: datetime) -> str:
    return moment.astimezone(timezone.get_fixed_timezone(0)).strftime("%Y-%m-%d %H:%M:%S UTC")


def _refuse(reason: str) -> Claim:
    return Claim(False, reason)


def claim_check(rule: RuleConfig, evidence: Mapping | None, *, now: datetime, template: str | None = None) -> Claim:
    """Whether the rule's claim is true now on ``evidence``, with the text it would show.

    Pure: reads nothing but its arguments. ``template`` replaces the rule's approved
    template (the admin previews a draft's wording with it).
    """
    offer = rule.offer
    if offer is None or not offer.serving:
        return _refuse("the offer is not live")
    if offer.starts_at is not None and offer.starts_at > now:
        return _refuse(f"the offer starts at {format_ends_at(offer.starts_at)}")
    if offer.ends_at is not None and offer.ends_at <= now:
        return _refuse(f"the offer ended at {format_ends_at(offer.ends_at)}")
    if evidence is None:
        return _refuse("no evidence has been measured yet")
    if evidence.get("offer") != offer.id:
        return _refuse("the evidence is about another offer (not recounted since the rule changed)")
    measured_at = as_datetime(evidence.get("measured_at"))
    computed_at = as_datetime(evidence.get("computed_at"))
    if measured_at is None or computed_at is None:
        return _refuse("the data source has never reported this number")
    bound = timedelta(seconds=rule.staleness_seconds)
    if measured_at > now + CLOCK_SKEW or computed_at > now + CLOCK_SKEW:
        return _refuse(f"the evidence is dated in the future ({_at(measured_at)})")
    oldest = min(measured_at, computed_at)
    if now - oldest > bound:
        return _refuse(
            f"the evidence is stale: measured {_at(measured_at)}, {int((now - oldest).total_seconds())} s ago "
            f"(bound {rule.staleness_seconds} s)"
        )
    values = dict(evidence.get("values") or {})
    template = rule.template if template is None else template
    made = dict(values=values, measured_at=measured_at, computed_at=computed_at)
    trigger = rule.trigger_type

    if trigger in (TriggerType.SOCIAL_PROOF_VIEWS, TriggerType.SOCIAL_PROOF_PURCHASES):
        if trigger == TriggerType.SOCIAL_PROOF_VIEWS and values.get("window_minutes") != rule.window_minutes:
            return _refuse("the evidence counted another window (not recounted since the rule changed)")
        if trigger == TriggerType.SOCIAL_PROOF_PURCHASES and values.get("since") != today_start(now).isoformat():
            return _refuse("the purchase count is from another day")
        count = values.get("count")
        needed = max(rule.threshold or 0, rule.minimum_count)
        phrase = window_phrase(trigger, rule.window_minutes or 0)
        what = "sessions viewed the offer" if trigger == TriggerType.SOCIAL_PROOF_VIEWS else "purchases of the offer"
        if not isinstance(count, int) or count < needed:
            return _refuse(f"{count} {what} {phrase}; the rule needs at least {needed}")
        text = render(template, {"count": count, "window": phrase, "offer": offer.name})
        return Claim(True, f"count={count} {what} {phrase} as of {_at(measured_at)}", text, **made)

    if trigger == TriggerType.LOW_STOCK:
        stock = values.get("stock_remaining")
        if not isinstance(stock, int):
            return _refuse("no stock has been reported")
        if stock <= 0:
            return _refuse(f"sold out (stock={stock} as of {_at(measured_at)})")
        if stock > (rule.threshold or 0):
            return _refuse(f"stock={stock} as of {_at(measured_at)} is above the threshold {rule.threshold}")
        restock = as_datetime(values.get("restock_at"))
        if restock is not None and restock <= now + timedelta(minutes=rule.window_minutes or 0):
            return _refuse(f"a restock is due {format_ends_at(restock)}, within the rule's window")
        text = render(template, {"stock": stock, "offer": offer.name})
        return Claim(True, f"stock={stock} as of {_at(measured_at)}", text, **made)

    if trigger in (TriggerType.OFFER_DEADLINE, TriggerType.FLASH_SALE):
        ends_at = offer.ends_at
        if ends_at is None:
            return _refuse("the offer has no end")
        if as_datetime(values.get("ends_at")) != ends_at:
            return _refuse("the evidence names another end than the approved offer (not recounted yet)")
        window = timedelta(minutes=rule.window_minutes or 0)
        if trigger == TriggerType.OFFER_DEADLINE and ends_at - now > window:
            return _refuse(f"the end {format_ends_at(ends_at)} is more than {rule.window_minutes} minutes away")
        if trigger == TriggerType.FLASH_SALE:
            if offer.discount_percent <= 0:
                return _refuse("a flash sale needs an approved discount")
            if offer.starts_at is None or ends_at - offer.starts_at > window:
                return _refuse(f"the sale is not a flash sale (longer than {rule.window_minutes} minutes)")
        text = render(template, {"ends_at": format_ends_at(ends_at), "offer": offer.name})
        because = f"the offer ends {format_ends_at(ends_at)}, in {_duration(ends_at - now)}"
        return Claim(True, because, text, ends_at=ends_at, **made)

    if trigger == TriggerType.EXCLUSIVITY:
        if not values.get("restricted"):
            return _refuse("the offer also reaches visitors outside a targeted audience")
        text = render(template, {"offer": offer.name})
        return Claim(True, f"only targeted variants {values.get('variants')} carry the offer", text, **made)

    return _refuse(f"unknown trigger {trigger}")


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def _audience_refusal(rule: RuleConfig, viewer: Viewer, variants: Mapping[int, VariantConfig]) -> str | None:
    """Exclusivity also holds on the live configuration: every live variant carrying
    the offer is targeted, and this visitor matches one of them."""
    if not viewer.consent:
        return "an exclusive audience is a targeting: it needs personalization consent"
    carrying = [v for v in variants.values() if v.offer is not None and v.offer.id == rule.offer.id]
    if not carrying or any(v.is_default or v.specificity == 0 for v in carrying):
        return "the offer also reaches visitors outside a targeted audience"
    if not any(
        v.matches(
            path=viewer.path,
            stage=viewer.stage,
            device=viewer.device,
            persona=viewer.persona,
            returning=viewer.returning,
        )
        for v in carrying
    ):
        return "the visitor is not in the offer's audience"
    return None


def cue_validate(
    rule: RuleConfig,
    evidence: Mapping | None,
    viewer: Viewer,
    *,
    now: datetime,
    variants: Mapping[int, VariantConfig] | None = None,
) -> Verdict:
    """Whether ``rule``'s cue shows to ``viewer`` now (module docstring, part 2). Pure.

    The holdout here is the hashed one; the decision path replaces it with the
    recorded (sticky) membership when one exists.
    """
    refusal = eligibility_refusal(rule, viewer)
    if refusal is not None:
        return Verdict(rule, False, False, refusal)
    claim = claim_check(rule, evidence, now=now)
    if not claim.true:
        return Verdict(rule, False, False, claim.reason, claim)
    if rule.trigger_type == TriggerType.EXCLUSIVITY:
        refusal = _audience_refusal(rule, viewer, variants or {})
        if refusal is not None:
            return Verdict(rule, False, False, refusal, claim)
    bucket = holdout_bucket(rule.id, viewer.session_id)
    if bucket < rule.holdout_share:
        return Verdict(rule, True, False, "in the rule's holdout", claim, bucket)
    return Verdict(rule, True, True, claim.reason, claim, bucket)


def rules_preview(*, rules: Sequence[ScarcityRule], now: datetime | None = None) -> dict[int, list[str]]:
    """What each rule would show now, for its approved version and for a newer draft (by rule id).

    "would show: 'Only 3 left' because stock=3 as of ..." or "would not show: ...".
    Targeting, sensitivity and holdout are per visitor and not part of the preview.
    Costs the same for one rule or a page of them: one evidence read
    (:func:`evidence_latest`) and one query for the approved versions' offers; a
    draft's offer is ``rule.offer`` (select it with the rules).
    """
    now = now or timezone.now()
    evidence = evidence_latest(rules)
    offers = Offer.objects.in_bulk({rule.published["offer"] for rule in rules if rule.published is not None})
    previews = {}
    for rule in rules:
        lines = []
        versions = []
        if rule.published is not None:
            offer = offers.get(rule.published["offer"])
            state = "serving" if rule.serving else f"not serving ({rule.status})"
            versions.append((f"Approved version {rule.published_version} ({state})", rule.published, offer))
        if rule.published_version != rule.version:
            versions.append((f"Draft version {rule.version} (not approved)", snapshot(rule), rule.offer))
        for label, data, offer in versions:
            config = rule_config(
                data, rule_id=rule.pk, site_id=rule.site_id, version=rule.version, offer=offer_facts(offer)
            )
            claim = claim_check(config, evidence.get(rule.pk), now=now)
            if claim.true:
                lines.append(f"{label} would show: '{claim.text}' because {claim.reason}")
            else:
                lines.append(f"{label} would not show: {claim.reason}")
        previews[rule.pk] = lines
    return previews
