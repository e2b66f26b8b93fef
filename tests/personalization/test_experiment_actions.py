"""People in control: stop an experiment, declare a winner, pause or resume an arm - asked by a
marketer, applied only when an approver approves, each kept in the approval record and audit log."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from personalization import selectors
from personalization.models import (
    ApprovalRequest,
    AuditLog,
    ContentVariant,
    Experiment,
    ExperimentArm,
    Exposure,
    OptimizationProposal,
    ProposalKind,
    ProposalStatus,
    RequestStatus,
    Slot,
    Status,
)
from personalization.services.approvals import (
    ChecklistIncomplete,
    SelfApprovalRefused,
    approvable_create,
    approval_decide,
    checklist_all_ticked,
)
from personalization.services.experiment_actions import NotAnAuthor, experiment_action_request
from personalization.services.optimizer import ProposalStale
from tests.journeys.helpers import start
from tests.personalization.helpers import approved


@pytest.fixture(autouse=True)
def _decisions_see_each_approval(monkeypatch):
    """The decision cache checks its version on every decision, not twice a second."""
    monkeypatch.setattr(selectors._config, "check_interval", 0)


@pytest.fixture
def variants(site, people):
    slot = Slot.objects.create(site=site, key="hero", name="Hero")
    made = {}
    for key, extra in [("hero-a", {"is_default": True}), ("hero-b", {}), ("hero-c", {})]:
        variant = ContentVariant.objects.create(
            site=site, slot=slot, key=key, name=f"Hero {key[-1].upper()}", payload={"headline": key}, **extra
        )
        made[key] = approved(variant, people)
    return made


def live(site, variants, people, *keys: str, weights: tuple[float, ...] | None = None) -> Experiment:
    """A live experiment on hero with ``keys`` as arms, the first the control."""
    keys = keys or ("hero-a", "hero-b", "hero-c")
    weights = weights or (0.4, 0.3, 0.3)[: len(keys)]
    experiment = approvable_create(
        obj=Experiment(site=site, key="hero-test", name="Hero test", slot=variants["hero-a"].slot),
        actor=people[0],
        arms=[
            {"variant": variants[key].pk, "is_control": index == 0, "weight": weight}
            for index, (key, weight) in enumerate(zip(keys, weights, strict=True))
        ],
    )
    return approved(experiment, people)


@pytest.fixture
def experiment(site, variants, people):
    return live(site, variants, people)


def ask(experiment, people, kind, variant=None, reason="Read the results with the team."):
    return experiment_action_request(
        experiment=experiment, requester=people[0], kind=kind, variant=variant, reason=reason
    )


@pytest.fixture
def approve(django_capture_on_commit_callbacks):
    """Approve a request as the approver, and run what waits for the commit (the decision cache's bump)."""

    def decide(request, people):
        with django_capture_on_commit_callbacks(execute=True):
            return approval_decide(
                request=request, decider=people[1], approve=True, checklist=checklist_all_ticked(request)
            )

    return decide


def shown(api, prefix: str, count: int, *, consent: bool = True) -> list[tuple[str, str]]:
    """(variant, reason) on slot hero for ``count`` new visitors."""
    answers = []
    for index in range(count):
        response = start(api, f"{prefix}-{index}", slots=["hero"], consent={"personalization": consent})
        slot = response.json()["decision"]["slots"]["hero"]
        answers.append((slot["variant"], slot["reason"]))
    return answers


def state() -> dict:
    return {
        "experiments": list(Experiment.objects.order_by("id").values()),
        "arms": list(ExperimentArm.objects.order_by("id").values()),
        "proposals": list(OptimizationProposal.objects.order_by("id").values()),
        "requests": list(ApprovalRequest.objects.order_by("id").values("id", "status", "object_id", "decider")),
        "audit": list(AuditLog.objects.order_by("id").values("id", "action", "object_id")),
    }


# --- stop -------------------------------------------------------------------------------------


def test_a_requested_stop_changes_nothing_until_approved_then_ends_the_experiment_audited(
    approve, api, experiment, people
):
    marketer, approver = people

    request = ask(experiment, people, ProposalKind.STOP, reason="The campaign ended early.")

    assert (request.status, request.requester, request.template.object_type) == (
        RequestStatus.PENDING,
        marketer,
        "experimentaction",
    )
    assert request.snapshot == {
        "experiment": "hero-test",
        "kind": "stop",
        "action": "Stop the experiment (after a winner: stop serving the winner)",
        "proposed": {"reason": "requested"},
        "reason": "The campaign ended early.",
        "requested_by": "mia",
    }
    assert {reason for _, reason in shown(api, "before", 5)} == {"experiment"}

    approve(request, people)

    experiment.refresh_from_db()
    assert experiment.status == Status.PAUSED
    assert experiment.ended_at is not None
    # the slot's usual content: hero-b matches every visitor by targeting (it has none)
    assert shown(api, "after", 5) == [("hero-b", "targeting")] * 5
    request.refresh_from_db()
    assert (request.status, request.decider) == (RequestStatus.APPROVED, approver)
    proposal = request.target
    assert (proposal.kind, proposal.status, proposal.requested_by) == ("stop", ProposalStatus.APPROVED, marketer)
    assert list(
        AuditLog.objects.filter(object_id__in=[proposal.pk, experiment.pk])
        .order_by("id")
        .values_list("action", "actor__username", "content_type__model")
    )[-3:] == [
        ("submitted", "mia", "optimizationproposal"),
        ("approved", "ada", "optimizationproposal"),
        ("requested_stop", "ada", "experiment"),
    ]


# --- declare a winner -------------------------------------------------------------------------


def test_an_approved_winner_serves_to_every_visitor_of_the_slot_consent_or_not(
    approve, api, experiment, variants, people
):
    request = ask(experiment, people, ProposalKind.DECLARE_WINNER, variants["hero-b"])

    approve(request, people)

    experiment.refresh_from_db()
    assert (experiment.status, experiment.winner) == (Status.ARCHIVED, variants["hero-b"])
    assert shown(api, "yes", 8) == [("hero-b", "winner")] * 8
    assert shown(api, "no", 4, consent=False) == [("hero-b", "winner")] * 4
    # served as the slot's content, not counted in the ended experiment
    assert Exposure.objects.filter(variant=variants["hero-b"], experiment__isnull=False).count() == 0
    assert (
        AuditLog.objects.filter(action="requested_declare_winner", object_id=experiment.pk).get().changes["winner"]
        == variants["hero-b"].pk
    )


def test_a_stop_after_a_winner_ends_its_rollout_and_the_slot_shows_its_usual_content(
    approve, api, experiment, variants, people
):
    approve(ask(experiment, people, ProposalKind.DECLARE_WINNER, variants["hero-b"]), people)
    experiment.refresh_from_db()
    concluded = experiment.ended_at
    assert shown(api, "winner", 3) == [("hero-b", "winner")] * 3

    approve(ask(experiment, people, ProposalKind.STOP, reason="hero-b is now the default variant."), people)

    experiment.refresh_from_db()
    assert (experiment.status, experiment.winner, experiment.ended_at) == (Status.PAUSED, variants["hero-b"], concluded)
    assert shown(api, "after", 3, consent=False) == [("hero-a", "no_consent")] * 3


def test_declaring_a_winner_on_a_stopped_experiment_is_refused_and_nothing_changes(
    approve, experiment, variants, people
):
    approve(ask(experiment, people, ProposalKind.STOP), people)
    before = state()

    with pytest.raises(ValidationError) as refused:
        ask(experiment, people, ProposalKind.DECLARE_WINNER, variants["hero-b"])

    assert refused.value.message_dict == {
        "experiment": ["hero-test is not running (ended): there is nothing left to declare winner."]
    }
    assert state() == before


def test_a_winner_whose_variant_stopped_serving_since_the_request_is_not_applied(approve, experiment, variants, people):
    request = ask(experiment, people, ProposalKind.DECLARE_WINNER, variants["hero-b"])
    ContentVariant.objects.filter(pk=variants["hero-b"].pk).update(status=Status.PAUSED)
    before = state()

    with pytest.raises(ProposalStale, match="hero-b does not serve"):
        approve(request, people)

    assert state() == before


# --- pause and resume an arm ------------------------------------------------------------------


def test_a_paused_arm_gets_no_new_exposures_and_its_share_goes_to_the_others(
    approve, api, experiment, variants, people
):
    before = shown(api, "before", 30)
    assert {variant for variant, _ in before} == {"hero-a", "hero-b", "hero-c"}
    exposures_of_c = Exposure.objects.filter(variant=variants["hero-c"]).count()

    approve(ask(experiment, people, ProposalKind.PAUSE_VARIANT, variants["hero-c"]), people)

    after = shown(api, "after", 30)
    assert {variant for variant, _ in after} == {"hero-a", "hero-b"}
    assert {reason for _, reason in after} == {"experiment"}
    assert Exposure.objects.filter(variant=variants["hero-c"]).count() == exposures_of_c
    assert list(experiment.arms.values_list("variant__key", "is_paused", "weight")) == [
        ("hero-a", False, 0.4),
        ("hero-b", False, 0.3),
        ("hero-c", True, 0.3),
    ]


def test_a_visitor_assigned_to_a_paused_arm_is_moved_to_an_active_one(approve, api, experiment, variants, people):
    first = shown(api, "s", 20)
    index = next(index for index, (variant, _) in enumerate(first) if variant == "hero-c")
    approve(ask(experiment, people, ProposalKind.PAUSE_VARIANT, variants["hero-c"]), people)

    again = start(api, "again", visitor_id=f"v-s-{index}", slots=["hero"], consent={"personalization": True})

    assert again.json()["decision"]["slots"]["hero"]["variant"] in {"hero-a", "hero-b"}


def test_a_resumed_arm_gets_visitors_again(approve, api, experiment, variants, people):
    approve(ask(experiment, people, ProposalKind.PAUSE_VARIANT, variants["hero-c"]), people)

    approve(ask(experiment, people, ProposalKind.RESUME_VARIANT, variants["hero-c"]), people)

    assert "hero-c" in {variant for variant, _ in shown(api, "after", 30)}
    assert not ExperimentArm.objects.filter(experiment=experiment, is_paused=True).exists()
    assert list(
        AuditLog.objects.filter(object_id=experiment.pk, action__startswith="requested_").values_list(
            "action", "changes"
        )
    ) == [
        (
            "requested_resume_variant",
            {
                "proposal": OptimizationProposal.objects.get(kind="resume_variant").pk,
                "resumed": [variants["hero-c"].pk],
            },
        ),
        (
            "requested_pause_variant",
            {"proposal": OptimizationProposal.objects.get(kind="pause_variant").pk, "paused": [variants["hero-c"].pk]},
        ),
    ]


@pytest.mark.parametrize(
    ("kind", "arm", "expected"),
    [
        (
            ProposalKind.PAUSE_VARIANT,
            "hero-a",
            {"variant": ["hero-a is the control: it is never paused (stop the experiment instead)."]},
        ),
        (ProposalKind.RESUME_VARIANT, "hero-b", {"variant": ["hero-b is not a paused arm of the experiment."]}),
        (ProposalKind.DECLARE_WINNER, None, {"variant": ["Name the arm's variant."]}),
    ],
)
def test_an_action_on_the_wrong_arm_is_refused_naming_the_field_and_nothing_changes(
    experiment, variants, people, kind, arm, expected
):
    before = state()

    with pytest.raises(ValidationError) as refused:
        ask(experiment, people, kind, variants[arm] if arm else None)

    assert refused.value.message_dict == expected
    assert state() == before


def test_pausing_the_last_active_treatment_is_refused_and_nothing_changes(site, variants, people):
    experiment = live(site, variants, people, "hero-a", "hero-b", weights=(0.5, 0.5))
    before = state()

    with pytest.raises(ValidationError) as refused:
        ask(experiment, people, ProposalKind.PAUSE_VARIANT, variants["hero-b"])

    assert refused.value.message_dict == {
        "variant": ["That would pause the last active treatment: stop the experiment or declare a winner instead."]
    }
    assert state() == before


def test_a_request_without_a_reason_or_while_one_of_its_kind_waits_is_refused(experiment, people):
    ask(experiment, people, ProposalKind.STOP)
    before = state()

    with pytest.raises(ValidationError) as no_reason:
        ask(experiment, people, ProposalKind.STOP, reason="  ")
    with pytest.raises(ValidationError) as twice:
        ask(experiment, people, ProposalKind.STOP)

    assert no_reason.value.message_dict == {"reason": ["Say why, for the approver and the record."]}
    pending = OptimizationProposal.objects.get()
    assert twice.value.message_dict == {"kind": [f"A stop of hero-test already waits for approval (#{pending.pk})."]}
    assert state() == before


def test_only_authors_request_and_only_another_person_approves_with_the_checklist(experiment, people):
    marketer, approver = people
    before = state()
    with pytest.raises(NotAnAuthor):
        experiment_action_request(experiment=experiment, requester=approver, kind="stop", reason="Done.")
    assert state() == before

    request = ask(experiment, people, ProposalKind.STOP)
    before = state()
    with pytest.raises(SelfApprovalRefused):
        approval_decide(request=request, decider=marketer, approve=True, checklist=checklist_all_ticked(request))
    with pytest.raises(ChecklistIncomplete):
        approval_decide(request=request, decider=approver, approve=True, checklist={})
    assert state() == before


def test_a_rejected_request_changes_nothing_in_the_experiment(api, experiment, people):
    request = ask(experiment, people, ProposalKind.STOP)
    arms = list(ExperimentArm.objects.order_by("id").values())

    approval_decide(request=request, decider=people[1], approve=False, comment="Let it reach its sample.")

    experiment.refresh_from_db()
    assert (experiment.status, experiment.ended_at) == (Status.LIVE, None)
    assert list(ExperimentArm.objects.order_by("id").values()) == arms
    assert OptimizationProposal.objects.get().status == ProposalStatus.REJECTED


# --- in the admin -----------------------------------------------------------------------------


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_marketer_requests_a_winner_in_the_admin_and_an_approver_approves_it_there(
    api, experiment, variants, people, django_capture_on_commit_callbacks
):
    marketer, approver = people
    page = _client(marketer).get(reverse("admin:personalization_experiment_change", args=[experiment.pk]))
    assert b"Declare a winner" in page.content and b"Request stop" in page.content

    response = _client(marketer).post(
        reverse("admin:personalization_experiment_request", args=[experiment.pk]),
        {"kind": "declare_winner", "variant": variants["hero-b"].pk, "reason": "B wins on every metric."},
    )

    request = ApprovalRequest.objects.get(requester=marketer, content_type__model="optimizationproposal")
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:personalization_approvalrequest_change", args=[request.pk])
    assert Experiment.objects.get().status == Status.LIVE

    with django_capture_on_commit_callbacks(execute=True):
        decided = _client(approver).post(
            reverse("admin:personalization_approvalrequest_change", args=[request.pk]),
            {"decision": "approve", "comment": "", "item_0": "on", "item_1": "on"},
        )

    assert decided.status_code == 302
    assert Experiment.objects.get().winner == variants["hero-b"]
    assert shown(api, "after", 3) == [("hero-b", "winner")] * 3


def test_the_admin_request_form_shows_the_refusal_on_its_field(experiment, variants, people):
    marketer, _ = people
    before = state()

    response = _client(marketer).post(
        reverse("admin:personalization_experiment_request", args=[experiment.pk]),
        {"kind": "pause_variant", "variant": variants["hero-a"].pk, "reason": "Control looks weak."},
    )

    assert response.status_code == 200
    assert response.context["form"].errors == {
        "variant": ["hero-a is the control: it is never paused (stop the experiment instead)."]
    }
    assert state() == before
