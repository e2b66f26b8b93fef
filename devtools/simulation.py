"""Synthetic visitors with a known truth, for driving the API (``manage.py simulate``).

Everything here is pure: given a seed it plans the same visitors, sessions, request
bodies, event ids and ground truth, with no HTTP and no database. The ``simulate``
command sends the plan to a running server. Visitor ``i`` of seed ``s`` draws from
its own generator (``random.Random(f"journey-sim:{s}:{i}")``), so the first 20
visitors of a 300-visitor run are the 20 visitors of a 20-visitor run.

Who visits
----------
Device (per visitor): mobile 58 %, desktop 34 %, tablet 8 %.

Source of a first session, by device (shares in %):

| source         | mobile | desktop | tablet |
| ---            | ---    | ---     | ---    |
| tiktok         | 25     | 3       | 8      |
| instagram      | 18     | 4       | 10     |
| youtube_shorts | 10     | 3       | 10     |
| facebook       | 10     | 8       | 12     |
| google         | 17     | 35      | 25     |
| direct         | 8      | 22      | 15     |
| referral       | 4      | 12      | 8      |
| email          | 8      | 13      | 12     |

Returning sessions come from direct 40 %, email 30 %, google 20 %, referral 10 %.
Each source has a few campaigns (:data:`CAMPAIGNS`); the campaign has no effect on
the truth, so a learner should find none.

Persona (per visitor, drawn independently of device and source so that every
coefficient below can be recovered by a plain logistic regression): Researcher 25 %,
TechEarlyAdopter 20 %, StudentHustler 20 %, BargainHunter 20 %, BusinessOwner 15 %.
The client sends it (truthfully, confidence uniform in [0.6, 0.95]) in 40 % of
sessions; otherwise the intent signals hint at it (``research_depth`` >= 0.6 for
Researchers, ``price_sensitivity`` >= 0.7 for BargainHunters) and the server guesses.

Engagement (per session): ``e ~ Beta(2, 3)`` (mean 0.4). Every engagement number the
client sends is ``e`` plus noise: touchpoint engagement scores (sd 0.1), scroll depth,
durations, clicks, the stage updates' engagement summaries, and
``purchase_intent = clip(0.15 + 0.7 e + N(0, 0.1))``.

Returning: after a visitor's first session, a 2nd session follows with probability
0.30 and, after a 2nd, a 3rd with probability 0.40; same ``visitor_id``, same device,
``returning: true``. Cross-device: 4 % of visitors also have a session on another
device under a second ``visitor_id``; both visitors give cross-device consent and the
client identifies both sessions with the same e-mail address. Consent otherwise:
personalization (per session) yes 80 %, no 15 %, not sent 5 %; cross-device (per
visitor) yes 30 %.

Ground truth: the purchase probability of a session
---------------------------------------------------
``p = 1 / (1 + exp(-z))`` with

    z = -2.60
        + device      {desktop: 0, tablet: -0.15, mobile: -0.35}
        + source      {email: +0.60, direct: +0.30, google: +0.20, referral: +0.10,
                       facebook: -0.20, instagram: -0.30, tiktok: -0.40, youtube_shorts: -0.50}
        + returning   +0.80
        + persona     {BusinessOwner: +0.45, TechEarlyAdopter: +0.30, BargainHunter: -0.10,
                       Researcher: -0.20, StudentHustler: -0.35}
        + engagement  +3.0 * (e - 0.4)

``returning`` is the flag the client sends (true for a visitor's 2nd and 3rd
session; a second-device session is not returning). ``persona`` is the visitor's
true persona, whether or not the client sends it.

Worked example: a first-time mobile visitor from TikTok, a StudentHustler with
engagement 0.4: ``z = -2.60 - 0.35 - 0.40 - 0.35 = -3.70``, ``p = 0.0241``. The same
person returning on a desktop from e-mail with engagement 0.8:
``z = -2.60 + 0.60 + 0.80 - 0.35 + 1.20 = -0.35``, ``p = 0.4134``.

Expected overall purchase rate (the mean of ``p`` over the sessions this model
produces, first, returning and second-device sessions together):
:data:`EXPECTED_CONVERSION_RATE` = 0.102 (Monte Carlo over 200,000 visitors,
``expected_conversion_rate()``).

A session purchases with probability ``p`` (one ``purchase``, value log-normal
around 45 EUR). A purchasing session walks awareness -> consideration -> decision and
then converts (the server moves it to ``conversion``). A session that does not
purchase stops on the way: it goes on from awareness with probability
``min(0.95, 0.30 + 0.6 e)`` and from consideration with ``min(0.95, 0.20 + 0.6 e)``.
Every session that reaches consideration also signs up for e-mail with probability
0.10 (an ``email_signup`` conversion, value 0, which does not move the stage).
"""

from __future__ import annotations

import copy
import math
import random
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

# Ground-truth model (see the module docstring).
INTERCEPT = -2.60
DEVICE_EFFECT = {"desktop": 0.0, "tablet": -0.15, "mobile": -0.35}
SOURCE_EFFECT = {
    "email": 0.60,
    "direct": 0.30,
    "google": 0.20,
    "referral": 0.10,
    "facebook": -0.20,
    "instagram": -0.30,
    "tiktok": -0.40,
    "youtube_shorts": -0.50,
}
RETURNING_EFFECT = 0.80
PERSONA_EFFECT = {
    "BusinessOwner": 0.45,
    "TechEarlyAdopter": 0.30,
    "BargainHunter": -0.10,
    "Researcher": -0.20,
    "StudentHustler": -0.35,
}
ENGAGEMENT_EFFECT = 3.0
ENGAGEMENT_CENTER = 0.4
EXPECTED_CONVERSION_RATE = 0.102

# Who visits.
DEVICE_SHARES = {"mobile": 0.58, "desktop": 0.34, "tablet": 0.08}
SOURCE_SHARES = {
    "mobile": {
        "tiktok": 0.25,
        "instagram": 0.18,
        "youtube_shorts": 0.10,
        "facebook": 0.10,
        "google": 0.17,
        "direct": 0.08,
        "referral": 0.04,
        "email": 0.08,
    },
    "desktop": {
        "tiktok": 0.03,
        "instagram": 0.04,
        "youtube_shorts": 0.03,
        "facebook": 0.08,
        "google": 0.35,
        "direct": 0.22,
        "referral": 0.12,
        "email": 0.13,
    },
    "tablet": {
        "tiktok": 0.08,
        "instagram": 0.10,
        "youtube_shorts": 0.10,
        "facebook": 0.12,
        "google": 0.25,
        "direct": 0.15,
        "referral": 0.08,
        "email": 0.12,
    },
}
RETURNING_SOURCE_SHARES = {"direct": 0.40, "email": 0.30, "google": 0.20, "referral": 0.10}
PERSONA_SHARES = {
    "Researcher": 0.25,
    "TechEarlyAdopter": 0.20,
    "StudentHustler": 0.20,
    "BargainHunter": 0.20,
    "BusinessOwner": 0.15,
}
CAMPAIGNS = {
    "tiktok": ["viral_tech", "creator_collab", "spring_drop"],
    "instagram": ["influencer_story", "spring_drop"],
    "youtube_shorts": ["unboxing_short", "viral_tech"],
    "facebook": ["retargeting", "lookalike"],
    "google": ["brand_search", "generic_search", "shopping_ads"],
    "email": ["weekly_newsletter", "cart_reminder"],
    "referral": ["partner_blog", "b2b_partner"],
    "direct": [""],
}
MEDIUM = {
    "tiktok": "social",
    "instagram": "social",
    "youtube_shorts": "video",
    "facebook": "social",
    "google": "cpc",
    "email": "email",
    "referral": "referral",
}
SHORT_VIDEO_SOURCES = {"tiktok", "instagram", "youtube_shorts"}
SCREENS = {
    "mobile": ["390x844", "375x812", "412x915"],
    "desktop": ["1920x1080", "1440x900", "2560x1440"],
    "tablet": ["820x1180", "768x1024"],
}
PRODUCTS = [("A1", "Wireless earbuds"), ("B2", "Phone stand"), ("C3", "Smart lamp"), ("D4", "Travel charger")]
SITE_URL = "https://shop.example"

PERSONA_SENT_SHARE = 0.40
SECOND_SESSION_SHARE = 0.30
THIRD_SESSION_SHARE = 0.40
CROSS_DEVICE_SHARE = 0.04
CONSENT_PERSONALIZATION = {True: 0.80, False: 0.15, None: 0.05}
CONSENT_CROSS_DEVICE_SHARE = 0.30
EMAIL_SIGNUP_SHARE = 0.10
PURCHASE_MEDIAN_EUR = 45.0

STAGES = ("awareness", "consideration", "decision", "conversion")


def true_logit(*, device: str, source: str, returning: bool, persona: str, engagement: float) -> float:
    """``z`` of the ground-truth model (module docstring)."""
    return (
        INTERCEPT
        + DEVICE_EFFECT[device]
        + SOURCE_EFFECT[source]
        + (RETURNING_EFFECT if returning else 0.0)
        + PERSONA_EFFECT[persona]
        + ENGAGEMENT_EFFECT * (engagement - ENGAGEMENT_CENTER)
    )


def true_probability(*, device: str, source: str, returning: bool, persona: str, engagement: float) -> float:
    """The true purchase probability of a session."""
    z = true_logit(device=device, source=source, returning=returning, persona=persona, engagement=engagement)
    return 1.0 / (1.0 + math.exp(-z))


@dataclass
class SessionTruth:
    """What really happened in a session; written as one JSON line to the truth file."""

    session_id: str
    visitor_id: str
    visitor_index: int
    session_number: int
    device: str
    source: str
    campaign: str
    returning: bool
    second_device: bool
    persona: str
    persona_sent: bool
    consent_personalization: bool | None
    consent_cross_device: bool
    engagement: float
    logit: float
    true_probability: float
    purchase_draw: float
    purchased: bool
    purchase_value: str | None
    email_signup: bool
    reached_stage: str
    events: int
    stage_updates: int
    identified: bool

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class StagePlan:
    """One stage of a session: how the client enters it, what it sends while there.

    ``update`` is the body of ``POST /sessions/{id}/stage`` (``None`` for awareness,
    which session start enters, and for conversion, which the purchase enters).
    """

    stage: str
    update: dict | None
    events: list[dict]
    conversions: list[dict] = field(default_factory=list)


@dataclass
class SessionPlan:
    session_id: str
    start: dict
    identify: dict | None
    stages: list[StagePlan]
    truth: SessionTruth

    @property
    def events(self) -> list[dict]:
        return [event for stage in self.stages for event in stage.events]


@dataclass
class VisitorPlan:
    """A person: their sessions, run in order (later ones depend on earlier ones)."""

    index: int
    sessions: list[SessionPlan]


def _pick(rng: random.Random, shares: dict) -> object:
    keys = list(shares)
    return rng.choices(keys, weights=[shares[key] for key in keys])[0]


def _clip(value: float, low: float = 0.0, high: float = 1.0) -> float:
    return max(low, min(high, value))


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class _Clock:
    """Client time inside a session: starts at an offset from the anchor, moves forward."""

    def __init__(self, anchor: datetime, offset_seconds: float) -> None:
        self.now = anchor + timedelta(seconds=round(offset_seconds))

    def advance(self, seconds: int) -> str:
        self.now += timedelta(seconds=seconds)
        return _iso(self.now)


def _event(
    rng: random.Random,
    *,
    session_id: str,
    clock: _Clock,
    engagement: float,
    device: dict,
    type: str,
    path: str,
    title: str,
    interaction: str = "",
) -> dict:
    duration = int(rng.expovariate(1.0 / (8 + 40 * engagement))) + 1
    event = {
        "event_id": _uuid(rng),
        "session_id": session_id,
        "type": type,
        "timestamp": clock.advance(duration),
        "page_url": f"{SITE_URL}{path}",
        "page_title": title,
        "engagement_score": round(_clip(engagement + rng.gauss(0, 0.1)), 3),
        "duration_seconds": duration,
        "scroll_depth": round(_clip(engagement + rng.gauss(0.1, 0.15)), 3),
        "click_count": rng.randint(0, 1 + round(4 * engagement)),
        "device_context": device,
    }
    if interaction:
        event["interaction_type"] = interaction
        event["interaction_data"] = {"target": path.rsplit("/", 1)[-1] or "home", "step": rng.randint(1, 5)}
    return event


def _engagement_summary(events: list[dict]) -> dict:
    """What the client reports on leaving a stage: totals of the stage's touchpoints."""
    return {
        "time_on_page": float(sum(event["duration_seconds"] for event in events)),
        "scroll_depth": max(event["scroll_depth"] for event in events),
        "interaction_count": sum(1 for event in events if event.get("interaction_type")),
        "engagement_score": round(sum(event["engagement_score"] for event in events) / len(events), 3),
    }


def _stage_events(rng: random.Random, stage: str, sku: str, name: str, landing: str, **common) -> list[dict]:
    event = _event
    if stage == "awareness":
        events = [event(rng, type="page_view", path=landing, title="Welcome", **common)]
        hooks = ["scroll", "video_play", "swipe"]
        events += [
            event(rng, type="interaction", path=landing, title="Welcome", interaction=rng.choice(hooks), **common)
            for _ in range(rng.randint(1, 3))
        ]
        return events
    if stage == "consideration":
        events = []
        for _ in range(rng.randint(1, 3)):
            product_sku, product_name = rng.choice(PRODUCTS)
            path = f"/p/{product_sku.lower()}"
            events.append(event(rng, type="page_view", path=path, title=product_name, **common))
            action = rng.choice(["gallery_swipe", "compare", "review_read"])
            events.append(event(rng, type="interaction", path=path, title=product_name, interaction=action, **common))
        return events
    if stage == "decision":
        return [
            event(rng, type="interaction", path=f"/p/{sku.lower()}", title=name, interaction="add_to_cart", **common),
            event(rng, type="page_view", path="/cart", title="Cart", **common),
            event(rng, type="page_view", path="/checkout", title="Checkout", **common),
        ]
    return [event(rng, type="page_view", path="/order/confirmed", title="Thank you", **common)]


def _session(
    rng: random.Random,
    *,
    seed: int,
    index: int,
    number: int,
    visitor_id: str,
    device: str,
    screen: str,
    persona: str,
    returning: bool,
    second_device: bool,
    consent_cross_device: bool,
    identifier: str | None,
    anchor: datetime,
    offset: float,
) -> tuple[SessionPlan, float]:
    """Plan one session; returns it and the client time (offset from anchor) it ends at."""
    session_id = f"sim-{seed}-{index}-{number}"
    source = _pick(rng, RETURNING_SOURCE_SHARES if returning else SOURCE_SHARES[device])
    campaign = rng.choice(CAMPAIGNS[source])
    engagement = round(rng.betavariate(2, 3), 4)
    consent_personalization = _pick(rng, CONSENT_PERSONALIZATION)
    persona_sent = rng.random() < PERSONA_SENT_SHARE
    logit = true_logit(device=device, source=source, returning=returning, persona=persona, engagement=engagement)
    probability = 1.0 / (1.0 + math.exp(-logit))
    purchase_draw = rng.random()
    purchased = purchase_draw < probability

    entry_point: dict = {"source": source, "url": f"{SITE_URL}/?src={source}"}
    if campaign:
        entry_point["campaign"] = campaign
    if source in SHORT_VIDEO_SOURCES:
        entry_point["referrer_video"] = f"vid-{rng.randrange(10_000)}"
    utm = {"utm_source": source, "utm_medium": MEDIUM[source], "utm_campaign": campaign} if source in MEDIUM else {}
    start: dict = {
        "session_id": session_id,
        "visitor_id": visitor_id,
        "device": {"type": device, "screen": screen, "fingerprint": f"fp-{seed}-{visitor_id}"},
        "entry_point": entry_point,
        "utm": utm,
        "referrer": {"url": f"https://{source}.example/"} if source not in {"direct", "email"} else {},
        "intent_signals": {
            "purchase_intent": round(_clip(0.15 + 0.7 * engagement + rng.gauss(0, 0.1)), 3),
            "urgency": round(rng.uniform(0, 0.6), 3),
            "research_depth": round(rng.uniform(0.6, 1.0) if persona == "Researcher" else rng.uniform(0, 0.5), 3),
            "price_sensitivity": round(rng.uniform(0.7, 1.0) if persona == "BargainHunter" else rng.uniform(0, 0.6), 3),
        },
        "returning": returning,
    }
    if persona_sent:
        start["persona"] = {"type": persona, "confidence": round(rng.uniform(0.6, 0.95), 3)}
    if consent_personalization is not None or consent_cross_device:
        start["consent"] = {"personalization": consent_personalization, "cross_device": consent_cross_device}

    # How far the session gets: purchasers walk the whole funnel.
    reached = "decision" if purchased else "awareness"
    if not purchased and rng.random() < min(0.95, 0.30 + 0.6 * engagement):
        reached = "consideration"
        if rng.random() < min(0.95, 0.20 + 0.6 * engagement):
            reached = "decision"
    walked = list(STAGES[: STAGES.index(reached) + 1]) + (["conversion"] if purchased else [])

    sku, name = rng.choice(PRODUCTS)
    landing = "/new-arrivals" if returning else "/"
    clock = _Clock(anchor, offset)
    common = {"session_id": session_id, "clock": clock, "engagement": engagement, "device": {"type": device}}
    triggers = {"consideration": "product_viewed", "decision": "add_to_cart"}
    stages: list[StagePlan] = []
    email_signup = False
    purchase_value = None
    previous: list[dict] = []
    for stage in walked:
        update = None
        if stage in triggers:
            update = {
                "new_stage": stage,
                "trigger_event": triggers[stage],
                "engagement": _engagement_summary(previous),
            }
        events = _stage_events(rng, stage, sku, name, landing, **common)
        plan = StagePlan(stage=stage, update=update, events=events)
        if stage == "consideration" and rng.random() < EMAIL_SIGNUP_SHARE:
            email_signup = True
            plan.conversions.append(
                {"event_id": _uuid(rng), "type": "email_signup", "value": "0.00", "funnel_step": "newsletter_form"}
            )
        if stage == "decision" and purchased:
            purchase_value = f"{rng.lognormvariate(math.log(PURCHASE_MEDIAN_EUR), 0.5):.2f}"
            plan.conversions.append(
                {
                    "event_id": _uuid(rng),
                    "type": "purchase",
                    "value": purchase_value,
                    "currency": "EUR",
                    "product": {"sku": sku, "name": name, "quantity": 1},
                    "funnel_step": "checkout",
                }
            )
        stages.append(plan)
        previous = events

    identify = None
    if identifier is not None:
        identify = {"session_id": session_id, "identifier": identifier, "method": "email"}
    truth = SessionTruth(
        session_id=session_id,
        visitor_id=visitor_id,
        visitor_index=index,
        session_number=number,
        device=device,
        source=source,
        campaign=campaign,
        returning=returning,
        second_device=second_device,
        persona=persona,
        persona_sent=persona_sent,
        consent_personalization=consent_personalization,
        consent_cross_device=consent_cross_device,
        engagement=engagement,
        logit=round(logit, 6),
        true_probability=round(probability, 6),
        purchase_draw=purchase_draw,
        purchased=purchased,
        purchase_value=purchase_value,
        email_signup=email_signup,
        reached_stage=walked[-1],
        events=sum(len(stage.events) for stage in stages),
        stage_updates=sum(1 for stage in stages if stage.update is not None),
        identified=identify is not None,
    )
    end = (clock.now - anchor).total_seconds()
    return SessionPlan(session_id=session_id, start=start, identify=identify, stages=stages, truth=truth), end


def variant_purchase(plan: SessionPlan, *, variant_rate: float) -> tuple[bool, dict]:
    """Experiment mode: the session buys with the true rate of the variant it was shown.

    The same uniform draw that decided the planned purchase decides this one, so a
    session that buys at rate r also buys at every rate above r (common random numbers:
    arms differ only by their rates). The purchase body is derived from the session id,
    so a rerun sends the same conversion and is counted as a duplicate.
    """
    bought = plan.truth.purchase_draw < variant_rate
    body = {
        "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"journey-sim:{plan.session_id}:variant-purchase")),
        "type": "purchase",
        "value": f"{PURCHASE_MEDIAN_EUR:.2f}",
        "currency": "EUR",
        "funnel_step": "checkout",
    }
    return bought, body


def plan_visitor(*, seed: int, index: int, anchor: datetime) -> VisitorPlan:
    """Plan visitor ``index`` of ``seed``: first session, returns, maybe a second device."""
    rng = random.Random(f"journey-sim:{seed}:{index}")
    device = _pick(rng, DEVICE_SHARES)
    screen = rng.choice(SCREENS[device])
    persona = _pick(rng, PERSONA_SHARES)
    cross_device = rng.random() < CROSS_DEVICE_SHARE
    consent_cross_device = cross_device or rng.random() < CONSENT_CROSS_DEVICE_SHARE
    identifier = f"person-{seed}-{index}@sim.example" if cross_device else None
    visitor_id = f"sim-{seed}-v{index}"
    common = {"seed": seed, "index": index, "persona": persona, "anchor": anchor}

    sessions: list[SessionPlan] = []
    offset = rng.uniform(0, 3600)
    session, end = _session(
        rng,
        number=1,
        visitor_id=visitor_id,
        device=device,
        screen=screen,
        returning=False,
        second_device=False,
        consent_cross_device=consent_cross_device,
        identifier=identifier,
        offset=offset,
        **common,
    )
    sessions.append(session)
    returns = 0
    if rng.random() < SECOND_SESSION_SHARE:
        returns = 2 if rng.random() < THIRD_SESSION_SHARE else 1
    for number in range(2, 2 + returns):
        session, end = _session(
            rng,
            number=number,
            visitor_id=visitor_id,
            device=device,
            screen=screen,
            returning=True,
            second_device=False,
            consent_cross_device=consent_cross_device,
            identifier=None,
            offset=end + rng.uniform(300, 1800),
            **common,
        )
        sessions.append(session)
    if cross_device:
        other = _pick(rng, {key: share for key, share in DEVICE_SHARES.items() if key != device})
        session, end = _session(
            rng,
            number=len(sessions) + 1,
            visitor_id=f"{visitor_id}-d2",
            device=other,
            screen=rng.choice(SCREENS[other]),
            returning=False,
            second_device=True,
            consent_cross_device=True,
            identifier=identifier,
            offset=end + rng.uniform(300, 1800),
            **common,
        )
        sessions.append(session)
    return VisitorPlan(index=index, sessions=sessions)


def plan_visitors(*, seed: int, visitors: int, anchor: datetime) -> list[VisitorPlan]:
    """The whole simulated population; the same for the same seed and anchor.

    Client timestamps are ``anchor`` plus offsets of at most about three hours, so an
    anchor three hours back keeps every timestamp in the past.
    """
    return [plan_visitor(seed=seed, index=index, anchor=anchor) for index in range(visitors)]


def with_offer_sku(visitors: list[VisitorPlan], sku: str) -> list[VisitorPlan]:
    """The same plan with every add-to-cart and purchase naming the product ``sku``.

    For driving an offer's scarcity cues: the add-to-cart touchpoints carry
    ``interaction_data.sku`` (a view of the offer) and purchases ``product.sku`` (a
    purchase of it). Nothing random is drawn, so the rest of the plan is unchanged.
    """
    planned = copy.deepcopy(visitors)
    for visitor in planned:
        for session in visitor.sessions:
            for stage in session.stages:
                for event in stage.events:
                    if event.get("interaction_type") == "add_to_cart":
                        event["interaction_data"] = {**event.get("interaction_data", {}), "sku": sku}
                for conversion in stage.conversions:
                    if conversion["type"] == "purchase":
                        conversion["product"] = {**conversion.get("product", {}), "sku": sku}
    return planned


def default_anchor(now: datetime) -> datetime:
    """Three hours before the current UTC hour: a run repeated within the same hour
    sends byte-identical events (duplicates, not conflicts)."""
    return now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)


def expected_conversion_rate(*, visitors: int = 200_000, seed: int = 0) -> float:
    """Mean true purchase probability over the sessions of ``visitors`` simulated visitors.

    Draws only what the probability depends on, the same way :func:`plan_visitor`
    does, without building request bodies (so it is fast enough for many visitors).
    """
    rng = random.Random(f"journey-sim-expected:{seed}")
    total, count = 0.0, 0

    def session(device: str, persona: str, returning: bool) -> None:
        nonlocal total, count
        source = _pick(rng, RETURNING_SOURCE_SHARES if returning else SOURCE_SHARES[device])
        engagement = rng.betavariate(2, 3)
        total += true_probability(
            device=device, source=source, returning=returning, persona=persona, engagement=engagement
        )
        count += 1

    for _ in range(visitors):
        device = _pick(rng, DEVICE_SHARES)
        persona = _pick(rng, PERSONA_SHARES)
        session(device, persona, False)
        if rng.random() < SECOND_SESSION_SHARE:
            session(device, persona, True)
            if rng.random() < THIRD_SESSION_SHARE:
                session(device, persona, True)
        if rng.random() < CROSS_DEVICE_SHARE:
            session(_pick(rng, {key: v for key, v in DEVICE_SHARES.items() if key != device}), persona, False)
    return total / count
