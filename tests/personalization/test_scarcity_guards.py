"""Guards that react: terms that really end, wording only through approval, the monitor, learning, admin, API."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from core import statistics
from journeys.models import ConversionEvent, JourneySession, Visitor
from personalization.cue_text import format_ends_at
from personalization.models import (
    ApprovalRequest,
    AuditLog,
    ClaimLedger,
    HoldoutMembership,
    MonitorFlag,
    Offer,
    RequestStatus,
    ScarcityRule,
    Status,
    TriggerType,
)
from personalization.services.approvals import (
    NotAnApprover,
    SelfApprovalRefused,
    approvable_edit,
    approval_decide,
    approval_submit,
    checklist_all_ticked,
)
from personalization.services.scarcity.evidence import scarcity_evidence_refresh
from personalization.services.scarcity.monitor_flags import scarcity_monitor
from personalization.services.scarcity.offers import OfferTermsRefused, offer_edit
from personalization.services.scarcity.sensitivity import scarcity_sensitivity_learn
from tests.journeys.helpers import JourneySessionFactory
from tests.personalization.helpers import offer_admin_form, staff
from tests.personalization.scarcity_helpers import (
    cues,
    live_offer,
    make_rule,
    reload_config,
    session_of,
    visit,
)


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _offer_state(offer_pk):
    offer = Offer.objects.get(pk=offer_pk)
    return offer.version, offer.status, offer.ends_at, offer.price, offer.discount_percent, offer.published


# --- offers whose terms really end -------------------------------------------------------


@pytest.fixture
def ended_offer(site, people):
    """A 20 %-off offer (40.00 EUR) that ended a day ago, with a deadline rule of 30 days' cooldown."""
    now = timezone.now()
    offer = live_offer(
        site,
        people,
        price="50.00",
        discount="20",
        starts_at=now - timedelta(days=8),
        ends_at=(now - timedelta(days=1)).replace(microsecond=0),
    )
    make_rule(site, offer, TriggerType.OFFER_DEADLINE, people, relaunch_cooldown_days=30)
    return offer


@pytest.mark.parametrize(
    "changes",
    [
        {"days": 7},  # same terms again
        {"days": 7, "discount_percent": Decimal("25")},  # better terms
        {"days": 7, "price": Decimal("45.00"), "discount_percent": Decimal("12")},  # 39.60 EUR: better
        {"ends_at": None},  # open-ended
    ],
)
def test_relaunching_ended_terms_within_the_cooldown_is_refused_and_nothing_changes(changes, ended_offer, people, site):
    changes = dict(changes)
    now = timezone.now()
    if "days" in changes:
        changes["ends_at"] = now + timedelta(days=changes.pop("days"))
    before, audits = _offer_state(ended_offer.pk), AuditLog.objects.count()

    with pytest.raises(OfferTermsRefused) as refused:
        offer_edit(offer=ended_offer, actor=people[0], changes=changes, now=now)

    assert "Relaunching it on the same or better terms" in str(refused.value)
    assert f"ended at {format_ends_at(ended_offer.ends_at)}" in str(refused.value)
    until = ended_offer.ends_at + timedelta(days=30)
    assert f"refused until {format_ends_at(until)} (30-day cooldown)" in str(refused.value)
    assert (_offer_state(ended_offer.pk), AuditLog.objects.count()) == (before, audits)


def test_relaunching_on_worse_terms_or_after_the_cooldown_is_allowed(ended_offer, people):
    now = timezone.now()
    worse = offer_edit(
        offer=ended_offer,
        actor=people[0],
        changes={"ends_at": now + timedelta(days=7), "discount_percent": Decimal("10")},
        now=now,
    )
    assert (worse.version, worse.status) == (2, Status.DRAFT)  # and it needs approval again

    later = ended_offer.ends_at + timedelta(days=30, seconds=1)
    same = offer_edit(
        offer=worse,
        actor=people[0],
        changes={"ends_at": later + timedelta(days=7), "discount_percent": Decimal("20")},
        now=later,
    )
    assert same.version == 3


def test_the_cooldown_is_the_longest_any_rule_on_the_offer_names(ended_offer, people, site):
    make_rule(site, ended_offer, TriggerType.FLASH_SALE, people, relaunch_cooldown_days=60)
    now = ended_offer.ends_at + timedelta(days=45)

    with pytest.raises(OfferTermsRefused, match="60-day cooldown"):
        offer_edit(offer=ended_offer, actor=people[0], changes={"ends_at": now + timedelta(days=1)}, now=now)


def test_a_deadline_visitors_saw_a_countdown_to_cannot_move_later(site, api, people):
    now = timezone.now()
    ends_at = now + timedelta(hours=3)
    offer = live_offer(site, people, ends_at=ends_at)
    make_rule(site, offer, TriggerType.OFFER_DEADLINE, people)
    visit(api, "s-viewer")
    scarcity_evidence_refresh(now=now)
    assert len(cues("s-viewer", now=now)) == 1
    before = _offer_state(offer.pk)

    for new_end in (ends_at + timedelta(hours=1), None):
        with pytest.raises(OfferTermsRefused, match="a countdown never restarts"):
            offer_edit(offer=offer, actor=people[0], changes={"ends_at": new_end}, now=now)
    assert _offer_state(offer.pk) == before

    earlier = offer_edit(offer=offer, actor=people[0], changes={"ends_at": ends_at - timedelta(hours=1)}, now=now)
    assert earlier.version == 2


def test_admin_refuses_a_relaunch_with_a_clear_message_and_changes_nothing(ended_offer, people):
    marketer, _ = people
    new_end = timezone.now() + timedelta(days=7)
    before, audits = _offer_state(ended_offer.pk), AuditLog.objects.count()

    response = _client(marketer).post(
        reverse("admin:personalization_offer_change", args=[ended_offer.pk]),
        offer_admin_form(ended_offer, ends_at_0=new_end.strftime("%Y-%m-%d"), ends_at_1="12:00:00"),
    )

    assert response.status_code == 200  # the form again, with the error
    errors = response.context["adminform"].form.non_field_errors()
    assert len(errors) == 1 and "is refused until" in errors[0] and "(30-day cooldown)" in errors[0]
    assert b"Relaunching it on the same or better terms" in response.content
    assert (_offer_state(ended_offer.pk), AuditLog.objects.count()) == (before, audits)


def test_admin_stock_edit_refreshes_the_low_stock_evidence(site, api, people, django_capture_on_commit_callbacks):
    marketer, _ = people
    offer = live_offer(site, people, stock=3)
    make_rule(site, offer, TriggerType.LOW_STOCK, people)
    visit(api, "s-viewer")
    scarcity_evidence_refresh()
    assert [cue["message"] for cue in cues("s-viewer")] == ["Only 3 left"]

    with django_capture_on_commit_callbacks(execute=True):
        response = _client(marketer).post(
            reverse("admin:personalization_offer_change", args=[offer.pk]), offer_admin_form(offer, stock_remaining=0)
        )

    assert response.status_code == 302
    offer.refresh_from_db()
    assert (offer.stock_remaining, offer.version) == (0, 1)  # live data: no new version
    assert cues("s-viewer") == []


# --- wording only through approval --------------------------------------------------------


@pytest.fixture
def live_low_stock(site, api, people):
    offer = live_offer(site, people, stock=3)
    rule = make_rule(site, offer, TriggerType.LOW_STOCK, people)
    visit(api, "s-viewer")
    scarcity_evidence_refresh()
    return rule


def test_a_marketer_editing_live_wording_makes_a_draft_and_the_approved_text_keeps_showing(
    live_low_stock, people, django_user_model
):
    marketer, approver = people
    edited = approvable_edit(obj=live_low_stock, actor=marketer, changes={"message_template": "Hurry: {stock} left"})
    reload_config()

    assert (edited.version, edited.published_version, edited.status) == (2, 1, Status.DRAFT)
    assert edited.published["message_template"] == "Only {stock} left"
    assert [cue["message"] for cue in cues("s-viewer")] == ["Only 3 left"]

    request = approval_submit(obj=edited, requester=marketer)
    with pytest.raises(SelfApprovalRefused):
        approval_decide(request=request, decider=marketer, approve=True)
    other_marketer = staff(django_user_model, "max", "Marketers")
    with pytest.raises(NotAnApprover):
        approval_decide(request=request, decider=other_marketer, approve=True)
    reload_config()
    assert [cue["message"] for cue in cues("s-viewer")] == ["Only 3 left"]

    approval_decide(request=request, decider=approver, approve=True, checklist=checklist_all_ticked(request))
    reload_config()
    assert [cue["message"] for cue in cues("s-viewer")] == ["Hurry: 3 left"]
    versions = list(ClaimLedger.objects.order_by("id").values_list("rule_version", "text"))
    assert versions == [(1, "Only 3 left"), (1, "Only 3 left"), (2, "Hurry: 3 left")]


def _rule_form(rule: ScarcityRule, **overrides) -> dict:
    data = {
        "site": rule.site_id,
        "key": rule.key,
        "name": rule.name,
        "trigger_type": rule.trigger_type,
        "offer": rule.offer_id,
        "threshold": "" if rule.threshold is None else rule.threshold,
        "window_minutes": "" if rule.window_minutes is None else rule.window_minutes,
        "minimum_count": rule.minimum_count,
        "staleness_seconds": rule.staleness_seconds,
        "message_template": rule.message_template,
        "target_stages": ",".join(rule.target_stages),
        "target_paths": ",".join(rule.target_paths),
        "target_personas": ",".join(rule.target_personas),
        "min_scarcity_sensitivity": rule.min_scarcity_sensitivity,
        "intensity": rule.intensity,
        "timing": rule.timing,
        "holdout_share": rule.holdout_share,
        "relaunch_cooldown_days": rule.relaunch_cooldown_days,
        "_save": "Save",
    }
    return data | overrides


def test_in_admin_a_marketer_cannot_change_live_wording_without_new_approval(live_low_stock, people):
    marketer, _ = people
    response = _client(marketer).post(
        reverse("admin:personalization_scarcityrule_change", args=[live_low_stock.pk]),
        _rule_form(live_low_stock, message_template="Nearly gone: {stock} left"),
        follow=True,
    )
    reload_config()

    assert response.status_code == 200
    messages = [str(m) for m in response.context["messages"]]
    assert any("keeps showing its approved text until this one is approved" in m for m in messages)
    rule = ScarcityRule.objects.get(pk=live_low_stock.pk)
    assert (rule.version, rule.published_version, rule.message_template) == (2, 1, "Nearly gone: {stock} left")
    assert rule.published["message_template"] == "Only {stock} left"
    assert [cue["message"] for cue in cues("s-viewer")] == ["Only 3 left"]


def test_in_admin_a_template_with_a_typed_number_is_refused(live_low_stock, people):
    marketer, _ = people
    response = _client(marketer).post(
        reverse("admin:personalization_scarcityrule_change", args=[live_low_stock.pk]),
        _rule_form(live_low_stock, message_template="Only 2 left!"),
    )

    assert response.status_code == 200
    assert "remove digits" in " ".join(response.context["adminform"].form.errors["message_template"])
    assert ScarcityRule.objects.get(pk=live_low_stock.pk).version == 1


def test_admin_submit_action_sends_a_rule_to_the_scarcity_checklist(site, people):
    marketer, approver = people
    offer = live_offer(site, people, stock=3)
    rule = make_rule(site, offer, TriggerType.LOW_STOCK, people, approved=False)

    response = _client(marketer).post(
        reverse("admin:personalization_scarcityrule_changelist"),
        {"action": "submit_for_approval", "_selected_action": [rule.pk]},
        follow=True,
    )

    assert [str(m) for m in response.context["messages"]] == ["Submitted for approval: low-stock v1."]
    request = ApprovalRequest.objects.get(status=RequestStatus.PENDING)
    assert request.template.object_type == "scarcityrule"
    assert any("data source" in item for item in request.template.checklist)


def test_admin_preview_says_what_would_show_and_why(live_low_stock, people):
    marketer, _ = people
    evidence_at = Offer.objects.get(pk=live_low_stock.offer_id).stock_updated_at

    page = _client(marketer).get(reverse("admin:personalization_scarcityrule_change", args=[live_low_stock.pk]))
    listing = _client(marketer).get(reverse("admin:personalization_scarcityrule_changelist"))

    stamp = evidence_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    expected = f"Approved version 1 (serving) would show: &#x27;Only 3 left&#x27; because stock=3 as of {stamp}"
    assert expected in page.content.decode()
    assert expected in listing.content.decode()


def test_the_ledger_is_read_only_in_admin(live_low_stock, people):
    marketer, approver = people
    cues("s-viewer")
    claim = ClaimLedger.objects.get()

    for user in (marketer, approver):
        client = _client(user)
        listing = client.get(reverse("admin:personalization_claimledger_changelist") + "?trigger_type=low_stock")
        assert listing.status_code == 200 and b"Only 3 left" in listing.content
        change = client.post(
            reverse("admin:personalization_claimledger_change", args=[claim.pk]), {"text": "Only 9 left"}
        )
        assert change.status_code == 403
        assert client.post(reverse("admin:personalization_claimledger_delete", args=[claim.pk])).status_code == 403
    assert ClaimLedger.objects.get().text == "Only 3 left"


# --- the monitor --------------------------------------------------------------------------


def _claim(rule, session, *, at, stock=None, ends_at=None, text="Only 3 left"):
    return ClaimLedger.objects.create(
        session=session,
        rule=rule,
        rule_version=1,
        trigger_type=rule.trigger_type,
        text=text,
        evidence={"stock_remaining": stock} if stock is not None else {},
        evidence_measured_at=at,
        ends_at=ends_at,
        shown_at=at,
    )


def test_monitor_flags_a_low_stock_cue_shown_while_the_stock_never_moved(site, people):
    now = timezone.now()
    offer = live_offer(site, people, stock=3)
    still = make_rule(site, offer, TriggerType.LOW_STOCK, people)
    moving_offer = live_offer(site, people, sku="B2", stock=3)
    moving = make_rule(site, moving_offer, TriggerType.LOW_STOCK, people, key="low-b2")
    session = JourneySessionFactory(site=site)
    for hours, moving_stock in ((25, 5), (12, 4), (1, 3)):
        _claim(still, session, at=now - timedelta(hours=hours), stock=3)
        _claim(moving, session, at=now - timedelta(hours=hours), stock=moving_stock)

    flags = scarcity_monitor(now=now, still_hours=24)

    assert [(flag.rule_id, flag.kind) for flag in flags] == [(still.pk, "stock_never_moved")]
    assert flags[0].details["stock"] == 3 and flags[0].details["cues_in_period"] == 2
    again = scarcity_monitor(now=now + timedelta(minutes=5), still_hours=24)
    assert [flag.pk for flag in again] == [flags[0].pk]  # one open flag, updated
    assert MonitorFlag.objects.count() == 1


def test_monitor_flags_a_countdown_shown_after_its_end(site, people):
    now = timezone.now()
    ends_at = now - timedelta(minutes=10)
    offer = live_offer(site, people, ends_at=now + timedelta(days=1))
    rule = make_rule(site, offer, TriggerType.OFFER_DEADLINE, people)
    session = JourneySessionFactory(site=site)
    _claim(rule, session, at=ends_at - timedelta(minutes=1), ends_at=ends_at, text="Offer ends soon")
    assert scarcity_monitor(now=now) == []

    late = _claim(rule, session, at=ends_at + timedelta(seconds=1), ends_at=ends_at, text="Offer ends soon")
    [flag] = scarcity_monitor(now=now)

    assert flag.kind == "countdown_after_end"
    assert flag.details["count"] == 1 and flag.details["first_shown_at"] == late.shown_at.isoformat()


def test_monitor_flags_are_listed_and_resolved_in_admin(site, people):
    marketer, approver = people
    now = timezone.now()
    offer = live_offer(site, people, ends_at=now + timedelta(days=1))
    rule = make_rule(site, offer, TriggerType.OFFER_DEADLINE, people)
    _claim(rule, JourneySessionFactory(site=site), at=now, ends_at=now - timedelta(seconds=1))
    [flag] = scarcity_monitor(now=now)

    listing = _client(approver).get(reverse("admin:personalization_monitorflag_changelist"))
    assert b"countdown(s) shown after" in listing.content
    _client(approver).post(
        reverse("admin:personalization_monitorflag_changelist"),
        {"action": "resolve", "_selected_action": [flag.pk]},
    )
    flag.refresh_from_db()
    assert flag.resolved is True and flag.resolved_at is not None


# --- sensitivity learned from responses ---------------------------------------------------


def test_sensitivity_learns_from_responses_with_consent_only(site, api, people):
    offer = live_offer(site, people, stock=3)
    make_rule(site, offer, TriggerType.LOW_STOCK, people)
    for sid, consent in (("s-buys", True), ("s-leaves", True), ("s-private", False)):
        visit(api, sid, consent=consent, device="desktop", source="google")
    scarcity_evidence_refresh()
    for sid in ("s-buys", "s-leaves", "s-private"):
        assert len(cues(sid)) == 1
    for sid in ("s-buys", "s-private"):
        response = api.post(
            f"/api/v1/sessions/{sid}/conversions",
            {"event_id": str(uuid.uuid4()), "type": "purchase", "value": "50.00"},
            format="json",
        )
        assert response.status_code == 201
    JourneySession.objects.update(ended_at=timezone.now())

    assert scarcity_sensitivity_learn() == 3

    learned = dict(Visitor.objects.values_list("visitor_id", "scarcity_sensitivity"))
    assert learned == {"v-s-buys": pytest.approx(0.6), "v-s-leaves": pytest.approx(0.4), "v-s-private": 0.5}
    assert not ClaimLedger.objects.filter(scored_at__isnull=True).exists()
    assert scarcity_sensitivity_learn() == 0  # each session once


# --- effectiveness through the analytics API ----------------------------------------------


def test_effectiveness_api_compares_exposed_with_holdout_sessions(site, api, people, staff_api, client_for):
    offer = live_offer(site, people, stock=3)
    rule = make_rule(site, offer, TriggerType.LOW_STOCK, people, holdout_share=0.5)
    ids = [f"s-{index}" for index in range(40)]
    for sid in ids:
        visit(api, sid, device="desktop", source="google")
    scarcity_evidence_refresh()
    for sid in ids:
        cues(sid)
        cues(sid)  # shown twice: two impressions, one session
    held = set(HoldoutMembership.objects.filter(in_holdout=True).values_list("session__session_id", flat=True))
    converters = ids[::3]
    for sid in converters:
        ConversionEvent.objects.create(
            site=site,
            session=session_of(sid),
            event_id=uuid.uuid4(),
            type="purchase",
            payload_hash="0" * 32,
            converted_at=timezone.now(),
        )

    response = staff_api.get("/api/v1/analytics/scarcity")

    assert response.status_code == 200
    [row] = response.json()["rules"]
    exposed_n, held_n = 40 - len(held), len(held)
    exposed_x = sum(sid not in held for sid in converters)
    held_x = sum(sid in held for sid in converters)
    assert 0 < held_n < 40
    assert row["rule"] == rule.key
    assert (row["impressions"], row["sessions_shown"]) == (2 * exposed_n, exposed_n)
    assert row["exposed"] == {"sessions": exposed_n, "conversions": exposed_x, "rate": exposed_x / exposed_n}
    assert row["holdout"] == {"sessions": held_n, "conversions": held_x, "rate": held_x / held_n}
    expected = statistics.compare(statistics.Arm(held_n, held_x), statistics.Arm(exposed_n, exposed_x))
    assert row["lift"]["relative_lift"] == pytest.approx(expected.relative_lift)
    assert (row["lift"]["ci_low"], row["lift"]["ci_high"]) == (
        pytest.approx(expected.ci_low),
        pytest.approx(expected.ci_high),
    )
    assert row["lift"]["p_value"] == expected.p_value
    assert row["lift"]["p_value_holm"] == row["lift"]["p_value"]  # Holm over the site's one rule
    assert row["lift"]["chance_to_beat_holdout"] == pytest.approx(
        statistics.chance_to_beat(statistics.Arm(held_n, held_x), statistics.Arm(exposed_n, exposed_x))
    )

    assert client_for(site).get("/api/v1/analytics/scarcity").status_code in (401, 403)
    bad = staff_api.get("/api/v1/analytics/scarcity?since=yesterday")
    assert (bad.status_code, bad.json()) == (400, {"since": ["Expected an ISO 8601 date or date-time."]})


def test_the_workers_run_on_the_beat(site, people):
    schedule = {entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}

    assert schedule["personalization.tasks.scarcity_evidence_task"] <= 60
    assert "personalization.tasks.scarcity_monitor_task" in schedule
    assert "personalization.tasks.scarcity_sensitivity_task" in schedule

    from personalization.tasks import scarcity_evidence_task

    offer = live_offer(site, people, stock=3)
    rule = make_rule(site, offer, TriggerType.LOW_STOCK, people)
    assert scarcity_evidence_task.delay().get() == 1
    assert rule.evidence.values["stock_remaining"] == 3
