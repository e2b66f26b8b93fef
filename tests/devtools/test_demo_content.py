"""The demo content of ``make run``: made through the services, live and approved, idempotent, with history."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Count, Sum
from django.utils import timezone

from analytics.models import PersonalizationDaily, ScarcityRuleDaily, SessionDaily, StageFlowDaily, VariantDaily
from analytics.reports import experiment_status
from analytics.rollups import rollups_recompute
from core.config_cache import VersionedCache
from devtools.demo_content import (
    BANNER_AFTER_DEAL,
    DEMO_SITE_DOMAIN,
    HISTORY_SESSIONS,
    MARKETER_USERNAME,
    deals_of,
    demo_content_build,
    demo_site_ensure,
)
from journeys.models import ConversionEvent, JourneySession, StageTransition, Touchpoint, Visitor
from personalization.models import (
    ApprovalRequest,
    AuditLog,
    ClaimLedger,
    ContentVariant,
    Experiment,
    ExperimentArm,
    Exposure,
    HoldoutMembership,
    Offer,
    PersonalizationRecord,
    RequestStatus,
    RuleEvidence,
    ScarcityRule,
    Slot,
    Status,
)
from personalization.services.approvals import approvable_edit
from personalization.services.scarcity.claims import holdout_bucket
from tests.journeys.helpers import start
from tests.personalization.helpers import approved

SHOP = "http://127.0.0.1:8001"
NOW = datetime(2026, 12, 5, 14, 27, 13, tzinfo=timezone.get_fixed_timezone(0))
# What the seeded history holds whatever the ids: the stages sessions reach come from
# the row number and the seed only.
HISTORY_CONVERSIONS = 448
HISTORY_TRANSITIONS = 6021


@pytest.fixture
def admin(django_user_model):
    return django_user_model.objects.create_superuser("admin", password="pw-admin-12345")


@pytest.fixture
def demo_site(db):
    return demo_site_ensure(origins=[SHOP, "http://localhost:8001"])


def build(site, admin, **options):
    VersionedCache.clear_all()  # approvals bump versions on commit, which a test transaction never reaches
    content = demo_content_build(site=site, approver=admin, shop_url=SHOP, log=lambda line: None, **options)
    VersionedCache.clear_all()
    return content


def content_state(site) -> dict:
    """Everything the demo content and history wrote, for before/after comparisons."""
    return {
        "slots": list(Slot.objects.filter(site=site).order_by("id").values()),
        "variants": list(ContentVariant.objects.filter(site=site).order_by("id").values()),
        "experiments": list(Experiment.objects.filter(site=site).order_by("id").values()),
        "arms": list(ExperimentArm.objects.filter(experiment__site=site).order_by("id").values()),
        "offers": list(Offer.objects.filter(site=site).order_by("id").values()),
        "rules": list(ScarcityRule.objects.filter(site=site).order_by("id").values()),
        "requests": list(ApprovalRequest.objects.order_by("id").values()),
        "audit": list(AuditLog.objects.order_by("id").values("id", "action", "object_id", "changes")),
        "sessions": JourneySession.objects.filter(site=site).count(),
        "claims": ClaimLedger.objects.filter(session__site=site).count(),
        "session_daily": list(SessionDaily.objects.filter(site=site).order_by("id").values()),
    }


def test_demo_content_is_live_approved_and_authored_by_the_marketer(demo_site, admin):
    content = build(demo_site, admin, now=NOW, history_sessions=0)

    assert sorted(Slot.objects.filter(site=demo_site).values_list("key", flat=True)) == ["cta", "hero", "offer_banner"]
    marketer = ContentVariant.objects.get(site=demo_site, key="hero-product").created_by
    assert marketer.username == MARKETER_USERNAME
    assert list(marketer.groups.values_list("name", flat=True)) == ["Marketers"]
    assert not marketer.has_usable_password()

    variants = ContentVariant.objects.filter(site=demo_site).order_by("key")
    assert [(v.key, v.slot.key, v.status, v.version, v.published_version) for v in variants] == [
        ("cta-add-to-cart", "cta", Status.LIVE, 1, 1),
        ("cta-free-returns", "cta", Status.LIVE, 1, 1),
        ("cta-ships-today", "cta", Status.LIVE, 1, 1),
        ("hero-product", "hero", Status.LIVE, 1, 1),
        ("hero-quiet-commute", "hero", Status.LIVE, 1, 1),
        ("offer-aurora-deal", "offer_banner", Status.LIVE, 1, 1),
    ]
    hero = ContentVariant.objects.get(site=demo_site, key="hero-quiet-commute")
    assert hero.published["payload"] == {
        "headline": "Your commute, finally quiet",
        "body": "Aurora cancels the train, the office and the café, and lasts 40 hours on one charge.",
        "image": "/static/img/aurora-commute.svg",
        "cta": "Hear the difference",
    }
    assert ContentVariant.objects.get(site=demo_site, key="offer-aurora-deal").offer.sku == "AUR-H1"

    hero_test = Experiment.objects.get(site=demo_site, key="hero-test")
    bandit = Experiment.objects.get(site=demo_site, key="cta-bandit")
    assert (hero_test.allocation, experiment_status(hero_test), hero_test.slot.key) == ("fixed", "running", "hero")
    assert (bandit.allocation, experiment_status(bandit), bandit.slot.key) == ("bandit", "running", "cta")
    assert [(a.variant.key, a.is_control, a.weight) for a in hero_test.arms.all()] == [
        ("hero-product", True, 0.5),
        ("hero-quiet-commute", False, 0.5),
    ]
    assert [a.variant.key for a in bandit.arms.all()] == ["cta-add-to-cart", "cta-free-returns", "cta-ships-today"]
    assert hero_test.started_at == NOW - timedelta(days=30)

    aurora = Offer.objects.get(site=demo_site, sku="AUR-H1")
    assert (aurora.status, aurora.published_version, aurora.price, aurora.discount_percent) == (
        Status.LIVE,
        1,
        Decimal("149.00"),
        Decimal("20.00"),
    )
    assert aurora.ends_at == datetime(2026, 12, 7, 15, 0, tzinfo=NOW.tzinfo)  # 49 h on, on the hour
    assert (aurora.stock_remaining, aurora.stock_updated_at) == (7, NOW)
    assert deals_of(demo_site, now=NOW) == {"AUR-H1": (Decimal("20.00"), aurora.ends_at)}
    others = Offer.objects.filter(site=demo_site).exclude(sku="AUR-H1").order_by("sku")
    assert [(o.sku, o.status, o.discount_percent, o.stock_remaining) for o in others] == [
        ("LUM-S3", Status.LIVE, Decimal("0.00"), 18),
        ("NOV-E2", Status.LIVE, Decimal("0.00"), 36),
    ]

    rules = ScarcityRule.objects.filter(site=demo_site).order_by("key")
    assert [(r.key, r.trigger_type, r.status, r.published_version, r.published["message_template"]) for r in rules] == [
        ("aurora-deadline", "offer_deadline", Status.LIVE, 1, "Deal ends {ends_at}"),
        ("aurora-low-stock", "low_stock", Status.LIVE, 1, "Only {stock} left in stock"),
        ("aurora-views", "social_proof_views", Status.LIVE, 1, "{count} people viewed {offer} {window}"),
    ]

    # Every approvable object went through one request: the marketer asked, the admin approved.
    requests = ApprovalRequest.objects.all()
    approvable = 6 + 2 + 1 + 3  # variants, experiments, the discounted offer, rules
    assert requests.count() == approvable
    assert {(r.status, r.requester_id, r.decider_id) for r in requests} == {
        (RequestStatus.APPROVED, marketer.pk, admin.pk)
    }
    assert all(all(r.checklist.values()) and r.checklist for r in requests)
    assert content.history is None
    assert len(content.created) == 3 + 3 + 6 + 2 + 3


def test_history_is_tied_to_the_demo_objects_and_rolled_up(demo_site, admin):
    content = build(demo_site, admin, now=NOW)

    sessions = JourneySession.objects.filter(site=demo_site)
    assert sessions.count() == HISTORY_SESSIONS == 3000
    assert Visitor.objects.filter(site=demo_site).count() == 3000
    assert Touchpoint.objects.filter(site=demo_site).count() == 3000 * 6
    assert StageTransition.objects.filter(session__site=demo_site).count() == HISTORY_TRANSITIONS
    conversions = ConversionEvent.objects.filter(site=demo_site)
    assert conversions.count() == HISTORY_CONVERSIONS
    assert set(conversions.values_list("product__sku", flat=True)) == {"AUR-H1"}
    assert set(conversions.values_list("value", flat=True)) == {Decimal("119.20"), Decimal("238.40")}
    # Over by now, and over 30 days.
    assert sessions.filter(last_activity_at__gt=NOW).count() == 0
    assert conversions.filter(converted_at__gt=NOW).count() == 0
    assert sessions.filter(started_at__lt=NOW - timedelta(days=30)).count() == 0
    assert sessions.filter(started_at__lt=NOW - timedelta(days=29)).exists()

    # Exposures are the demo's variants and experiments only.
    exposures = Exposure.objects.filter(session__site=demo_site)
    by_variant = dict(exposures.values("variant__key").annotate(n=Count("id")).values_list("variant__key", "n"))
    assert set(by_variant) == {
        "hero-product",
        "hero-quiet-commute",
        "cta-add-to-cart",
        "cta-free-returns",
        "cta-ships-today",
        "offer-aurora-deal",
    }
    reached_product = sessions.exclude(max_stage="awareness").count()
    assert by_variant["hero-product"] + by_variant["hero-quiet-commute"] == 3000
    assert by_variant["cta-add-to-cart"] + by_variant["cta-free-returns"] + by_variant["cta-ships-today"] == (
        reached_product
    )
    assert by_variant["offer-aurora-deal"] == reached_product
    assert set(exposures.exclude(experiment=None).values_list("experiment__key", flat=True)) == {
        "hero-test",
        "cta-bandit",
    }
    # The deadline was shown only in its window, before its end, always the same end.
    deadline = ClaimLedger.objects.filter(rule__key="aurora-deadline", session__site=demo_site)
    aurora = Offer.objects.get(site=demo_site, sku="AUR-H1")
    assert deadline.exists()
    assert set(deadline.values_list("ends_at", flat=True)) == {aurora.ends_at}
    assert set(deadline.values_list("text", flat=True)) == {"Deal ends 2026-12-07 15:00 UTC"}
    assert not deadline.filter(shown_at__lt=aurora.ends_at - timedelta(days=3)).exists()
    stock_texts = set(ClaimLedger.objects.filter(rule__key="aurora-low-stock").values_list("text", flat=True))
    assert stock_texts <= {f"Only {n} left in stock" for n in range(2, 10)} and len(stock_texts) > 1

    # Rolled up: the dashboards' tables hold exactly the raw numbers.
    assert content.rollup_keys == 31
    daily = SessionDaily.objects.filter(site=demo_site).aggregate(
        sessions=Sum("sessions"), conversions=Sum("conversions"), revenue=Sum("revenue"), touchpoints=Sum("touchpoints")
    )
    assert daily == {
        "sessions": 3000,
        "conversions": HISTORY_CONVERSIONS,
        "revenue": conversions.aggregate(total=Sum("value"))["total"],
        "touchpoints": 18000,
    }
    assert StageFlowDaily.objects.filter(site=demo_site).aggregate(n=Sum("transitions"))["n"] == HISTORY_TRANSITIONS
    assert VariantDaily.objects.filter(site=demo_site).aggregate(n=Sum("exposures"))["n"] == exposures.count()
    assert ScarcityRuleDaily.objects.filter(site=demo_site).aggregate(n=Sum("impressions"))["n"] == (
        ClaimLedger.objects.filter(session__site=demo_site).count()
    )
    assert (
        ScarcityRuleDaily.objects.filter(site=demo_site).aggregate(n=Sum("exposed_sessions") + Sum("holdout_sessions"))[
            "n"
        ]
        == HoldoutMembership.objects.filter(session__site=demo_site).count()
    )
    assert PersonalizationDaily.objects.filter(site=demo_site).aggregate(n=Sum("applications"))["n"] == (
        PersonalizationRecord.objects.filter(session__site=demo_site).count()
    )
    rolled = list(
        SessionDaily.objects.filter(site=demo_site).order_by("day", "journey_path", "device_type", "persona").values()
    )
    rollups_recompute(site_id=demo_site.pk)
    recomputed = list(
        SessionDaily.objects.filter(site=demo_site).order_by("day", "journey_path", "device_type", "persona").values()
    )
    assert [{k: v for k, v in row.items() if k != "id"} for row in rolled] == [
        {k: v for k, v in row.items() if k != "id"} for row in recomputed
    ]


def test_a_visitor_of_the_demo_site_is_served_the_experiment_and_the_true_cues(demo_site, admin, client_for):
    build(demo_site, admin, history_sessions=0)
    rules = ScarcityRule.objects.filter(site=demo_site)
    session_id = next(
        f"s-{n}"
        for n in range(1000)
        if all(holdout_bucket(rule.pk, f"s-{n}") >= rule.published["holdout_share"] for rule in rules)
    )

    response = start(
        client_for(demo_site), session_id, slots=["hero", "cta", "offer_banner"], consent={"personalization": True}
    )

    assert response.status_code == 201, response.json()
    decision = response.json()["decision"]
    assert decision["slots"]["hero"]["experiment"] == "hero-test"
    assert decision["slots"]["hero"]["variant"] in {"hero-product", "hero-quiet-commute"}
    assert decision["slots"]["cta"]["experiment"] == "cta-bandit"
    assert decision["slots"]["offer_banner"]["variant"] == "offer-aurora-deal"
    assert decision["slots"]["offer_banner"]["offer"]["sku"] == "AUR-H1"
    aurora = Offer.objects.get(site=demo_site, sku="AUR-H1")
    cues = {cue["trigger_type"]: cue for cue in decision["scarcity"]}
    assert cues["low_stock"]["message"] == "Only 7 left in stock"
    assert cues["offer_deadline"]["message"] == f"Deal ends {aurora.ends_at:%Y-%m-%d %H:%M} UTC"
    assert cues["offer_deadline"]["ends_at"] == aurora.ends_at.isoformat()
    assert "social_proof_views" not in cues  # nobody else viewed it in the last hour


def test_a_second_build_changes_nothing(demo_site, admin):
    build(demo_site, admin, now=NOW)
    before = content_state(demo_site)

    again = build(demo_site, admin, now=NOW + timedelta(hours=20))

    assert content_state(demo_site) == before
    assert (again.created, again.history, again.notes) == ([], None, [])


def test_an_edit_a_person_approved_in_the_admin_is_kept(demo_site, admin):
    build(demo_site, admin, now=NOW, history_sessions=0)
    variant = ContentVariant.objects.get(site=demo_site, key="hero-quiet-commute")
    marketer = variant.created_by
    payload = {**variant.payload, "headline": "Silence, on every commute"}
    edited = approvable_edit(obj=variant, actor=marketer, changes={"payload": payload})
    approved(edited, (marketer, admin))

    build(demo_site, admin, now=NOW + timedelta(hours=1), history_sessions=0)

    variant.refresh_from_db()
    assert (variant.version, variant.published_version, variant.status) == (2, 2, Status.LIVE)
    assert variant.published["payload"]["headline"] == "Silence, on every commute"


def test_after_the_deadline_the_deal_ends_for_real_and_is_not_restarted(demo_site, admin):
    build(demo_site, admin, now=NOW)
    aurora = Offer.objects.get(site=demo_site, sku="AUR-H1")
    ended_at = aurora.ends_at
    later = ended_at + timedelta(days=1)

    content = build(demo_site, admin, now=later)

    aurora.refresh_from_db()
    assert (aurora.status, aurora.version, aurora.published_version) == (Status.LIVE, 2, 2)
    assert (aurora.published["discount_percent"], aurora.published["ends_at"]) == ("0.00", None)
    assert deals_of(demo_site, now=later) == {}
    banner = ContentVariant.objects.get(site=demo_site, key="offer-aurora-deal")
    assert (banner.published_version, banner.published["payload"]) == (2, BANNER_AFTER_DEAL)
    assert content.notes == [
        "The Aurora Headphones launch deal ended at 2026-12-07 15:00 UTC; AUR-H1 is back at its list price "
        "(149.00 EUR) and the countdown is gone.",
        "The banner offer-aurora-deal no longer names the deal.",
    ]
    # No countdown was restarted, and a further build changes nothing.
    assert set(ClaimLedger.objects.filter(rule__key="aurora-deadline").values_list("ends_at", flat=True)) == {ended_at}
    before = content_state(demo_site)
    assert build(demo_site, admin, now=later + timedelta(hours=1)).notes == []
    assert content_state(demo_site) == before


def test_the_demo_site_gets_the_shop_origins_it_lacks(db):
    site = demo_site_ensure(origins=["http://127.0.0.1:8001"])
    assert (site.domain, site.allowed_origins) == (DEMO_SITE_DOMAIN, ["http://127.0.0.1:8001"])

    again = demo_site_ensure(origins=["http://127.0.0.1:8001", "http://localhost:8001"])

    assert again.pk == site.pk
    assert again.allowed_origins == ["http://127.0.0.1:8001", "http://localhost:8001"]
    assert demo_site_ensure(origins=["http://localhost:8001"]).allowed_origins == again.allowed_origins


def test_the_rules_evidence_is_measured_so_the_cues_show_at_once(demo_site, admin):
    build(demo_site, admin, now=NOW, history_sessions=0)

    evidence = {e.rule.key: e for e in RuleEvidence.objects.filter(rule__site=demo_site)}
    assert sorted(evidence) == ["aurora-deadline", "aurora-low-stock", "aurora-views"]
    assert (evidence["aurora-low-stock"].values, evidence["aurora-low-stock"].measured_at) == (
        {"stock_remaining": 7, "restock_at": None},
        NOW,
    )
    assert evidence["aurora-deadline"].values["ends_at"] == "2026-12-07T15:00:00+00:00"
