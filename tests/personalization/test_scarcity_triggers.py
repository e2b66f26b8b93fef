"""Every trigger type: shown when true, and not when false, stale, under its minimum, held out or unapproved."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from personalization.models import ClaimLedger, HoldoutMembership, Status, TriggerType
from personalization.services.approvals import approval_submit
from personalization.services.scarcity.evidence import scarcity_evidence_refresh
from tests.personalization.scarcity_helpers import (
    ALL_TRIGGERS,
    cues,
    reload_config,
    scenario,
    session_id_in,
    visit,
)


@pytest.mark.parametrize("trigger", ALL_TRIGGERS)
def test_a_true_claim_is_shown_with_its_approved_text_and_recorded(trigger, site, api, people):
    now = timezone.now()
    case = scenario(trigger, site, people, now=now)
    visit(api, "s-viewer", **case.session_fields)  # no evidence yet: its start shows nothing
    scarcity_evidence_refresh(now=now)

    shown = cues("s-viewer", now=now)

    assert [(cue["rule"], cue["trigger_type"], cue["message"]) for cue in shown] == [
        (case.rule.key, trigger, case.text)
    ]
    claim = ClaimLedger.objects.get()
    assert (claim.session.session_id, claim.rule_id, claim.rule_version, claim.text) == (
        "s-viewer",
        case.rule.pk,
        1,
        case.text,
    )
    assert claim.shown_at == now
    assert claim.evidence == shown[0]["evidence"]
    assert HoldoutMembership.objects.filter(rule=case.rule, in_holdout=False).count() == 1


@pytest.mark.parametrize("trigger", ALL_TRIGGERS)
def test_a_false_claim_is_not_shown(trigger, site, api, people):
    now = timezone.now()
    case = scenario(trigger, site, people, now=now, true=False)
    visit(api, "s-viewer", **case.session_fields)  # no evidence yet: its start shows nothing
    scarcity_evidence_refresh(now=now)

    assert cues("s-viewer", now=now) == []
    assert ClaimLedger.objects.count() == 0
    assert HoldoutMembership.objects.count() == 0  # not eligible: not part of the lift measurement


@pytest.mark.parametrize("trigger", ALL_TRIGGERS)
def test_stale_evidence_shows_no_cue(trigger, site, api, people):
    now = timezone.now()
    case = scenario(trigger, site, people, now=now, staleness_seconds=120)
    visit(api, "s-viewer", **case.session_fields)  # no evidence yet: its start shows nothing
    scarcity_evidence_refresh(now=now)

    assert [cue["message"] for cue in cues("s-viewer", now=now + timedelta(seconds=120))] == [case.text]
    assert cues("s-viewer", now=now + timedelta(seconds=121)) == []
    assert ClaimLedger.objects.count() == 1


@pytest.mark.parametrize("trigger", ALL_TRIGGERS)
def test_no_evidence_yet_shows_no_cue(trigger, site, api, people):
    now = timezone.now()
    case = scenario(trigger, site, people, now=now)
    visit(api, "s-viewer", **case.session_fields)

    assert cues("s-viewer", now=now) == []


@pytest.mark.parametrize("trigger", [TriggerType.SOCIAL_PROOF_VIEWS, TriggerType.SOCIAL_PROOF_PURCHASES])
def test_social_proof_under_its_minimum_is_not_shown(trigger, site, api, people):
    now = timezone.now()
    # the counts are 4 views / 2 purchases: over the threshold of 1, under the minimum of 5
    case = scenario(trigger, site, people, now=now, threshold=1, minimum_count=5)
    visit(api, "s-viewer")
    scarcity_evidence_refresh(now=now)

    assert cues("s-viewer", now=now) == []
    case.rule.refresh_from_db()
    assert case.rule.evidence.values["count"] == {"social_proof_views": 4, "social_proof_purchases": 2}[trigger]


@pytest.mark.parametrize("trigger", ALL_TRIGGERS)
def test_a_session_in_the_holdout_never_sees_the_cue_and_is_recorded(trigger, site, api, people):
    now = timezone.now()
    case = scenario(trigger, site, people, now=now, holdout_share=0.5)
    held = session_id_in(case.rule, holdout=True)
    exposed = session_id_in(case.rule, holdout=False)
    visit(api, held, **case.session_fields)
    visit(api, exposed, **case.session_fields)
    scarcity_evidence_refresh(now=now)

    assert cues(held, now=now) == []
    assert cues(held, now=now + timedelta(seconds=1)) == []
    assert [cue["message"] for cue in cues(exposed, now=now)] == [case.text]
    memberships = dict(HoldoutMembership.objects.values_list("session__session_id", "in_holdout"))
    assert memberships == {held: True, exposed: False}
    assert list(ClaimLedger.objects.values_list("session__session_id", flat=True)) == [exposed]


@pytest.mark.parametrize("trigger", ALL_TRIGGERS)
def test_a_rule_without_approval_is_not_shown(trigger, site, api, people):
    now = timezone.now()
    case = scenario(trigger, site, people, now=now, approved=False)
    visit(api, "s-viewer", **case.session_fields)  # no evidence yet: its start shows nothing
    scarcity_evidence_refresh(now=now)

    assert cues("s-viewer", now=now) == []
    approval_submit(obj=case.rule, requester=people[0])  # waiting for approval is not approved
    reload_config()
    assert cues("s-viewer", now=now) == []
    assert ClaimLedger.objects.count() == 0


@pytest.mark.parametrize("trigger", ALL_TRIGGERS)
def test_a_paused_rule_stops_at_once(trigger, site, api, people):
    from personalization.services.scarcity.rules import scarcity_rule_pause

    now = timezone.now()
    case = scenario(trigger, site, people, now=now)
    visit(api, "s-viewer", **case.session_fields)  # no evidence yet: its start shows nothing
    scarcity_evidence_refresh(now=now)
    assert len(cues("s-viewer", now=now)) == 1

    scarcity_rule_pause(rule=case.rule, actor=people[0])
    reload_config()

    assert cues("s-viewer", now=now) == []
    case.rule.refresh_from_db()
    assert case.rule.status == Status.PAUSED
