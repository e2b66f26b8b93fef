"""Experiments that cannot be set up wrong: the design and slot rules, refused by the service
on create, edit, submit and approve, and by the admin form on the field the service names."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from journeys.models import Visitor
from personalization.decisions import bucket
from personalization.models import (
    Allocation,
    ApprovalRequest,
    AuditLog,
    ContentVariant,
    Experiment,
    ExperimentArm,
    RequestStatus,
    Slot,
    Status,
)
from personalization.services.approvals import (
    approvable_create,
    approvable_edit,
    approval_decide,
    approval_submit,
    checklist_all_ticked,
    experiment_edit,
)
from tests.journeys.helpers import start
from tests.personalization.helpers import approved


@pytest.fixture
def slots(site):
    return {key: Slot.objects.create(site=site, key=key, name=key.title()) for key in ("hero", "cta")}


@pytest.fixture
def variants(site, slots, people):
    """Approved variants: hero-a, hero-b, hero-c on slot hero; cta-a on slot cta."""
    made = {}
    for key, slot in [("hero-a", "hero"), ("hero-b", "hero"), ("hero-c", "hero"), ("cta-a", "cta")]:
        variant = ContentVariant.objects.create(
            site=site, slot=slots[slot], key=key, name=f"{key.upper()} name", payload={"headline": key}
        )
        made[key] = approved(variant, people)
    return made


def arm(variant, *, control=False, weight=0.5, paused=False) -> dict:
    return {"variant": variant.pk, "is_control": control, "weight": weight, "is_paused": paused}


def two_arms(variants) -> list[dict]:
    return [arm(variants["hero-a"], control=True), arm(variants["hero-b"])]


def draft(site, slots, people, arms, key="hero-test", **fields) -> Experiment:
    return approvable_create(
        obj=Experiment(site=site, key=key, name=key, slot=slots["hero"], **fields), actor=people[0], arms=arms
    )


def state() -> dict:
    """Everything the experiment services may write."""
    return {
        "experiments": list(Experiment.objects.order_by("id").values()),
        "arms": list(ExperimentArm.objects.order_by("id").values()),
        "requests": list(ApprovalRequest.objects.order_by("id").values("id", "status", "object_id", "decider")),
        "audit": list(AuditLog.objects.order_by("id").values("id", "action", "object_id")),
    }


def refusal_of(call) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as refused:
        call()
    return refused.value.message_dict


# --- design rules, on create ----------------------------------------------------------


@pytest.mark.parametrize(
    ("arms", "fields", "expected"),
    [
        (
            lambda v: [arm(v["hero-a"], control=True), arm(v["cta-a"])],
            {},
            {
                "arms[1].variant": [
                    "cta-a is content for slot cta, not for the experiment's slot hero: it could never be shown there."
                ]
            },
        ),
        (
            lambda v: [arm(v["hero-a"]), arm(v["hero-b"])],
            {},
            {"arms": ["Mark exactly one arm as the control (is_control): none is."]},
        ),
        (
            lambda v: [arm(v["hero-a"], control=True), arm(v["hero-b"], control=True)],
            {},
            {"arms": ["Mark exactly one arm as the control (is_control): arms 1, 2 are."]},
        ),
        (
            lambda v: [arm(v["hero-a"], control=True, weight=0.5), arm(v["hero-b"], weight=0.4)],
            {},
            {"arms": ["The active arms' weights sum to 0.9; they must sum to 1 (within 0.001)."]},
        ),
        (
            lambda v: [arm(v["hero-a"], control=True, weight=1.0)],
            {"allocation": Allocation.BANDIT},
            {"allocation": ["A bandit allocates traffic between at least two arms; it has 1."]},
        ),
        (
            lambda v: [arm(v["hero-a"], control=True, weight=1.0)],
            {},
            {"arms": ["An experiment compares at least two arms, a control and a treatment; it has 1."]},
        ),
        (
            lambda v: [arm(v["hero-a"], control=True), arm(v["hero-a"])],
            {},
            {"arms[1].variant": ["This variant is already arm 1."]},
        ),
        (
            lambda v: [arm(v["hero-a"], control=True, weight=-0.5), arm(v["hero-b"], weight=1.5)],
            {},
            {
                "arms[0].weight": ["A weight is a share of the traffic, from 0 to 1."],
                "arms[1].weight": ["A weight is a share of the traffic, from 0 to 1."],
            },
        ),
        (
            lambda v: [arm(v["hero-a"], control=True, paused=True), arm(v["hero-b"]), arm(v["hero-c"])],
            {},
            {"arms[0].is_paused": ["The control is never paused: it is what the others are compared to."]},
        ),
    ],
    ids=[
        "variant-of-another-slot",
        "no-control",
        "two-controls",
        "weights-not-1",
        "bandit-one-arm",
        "one-arm",
        "same-variant-twice",
        "weight-out-of-range",
        "paused-control",
    ],
)
def test_a_design_that_cannot_run_is_refused_on_create_naming_the_field_and_nothing_is_saved(
    site, slots, variants, people, arms, fields, expected
):
    before = state()

    errors = refusal_of(lambda: draft(site, slots, people, arms(variants), **fields))

    assert errors == expected
    assert state() == before


def test_the_issue_s_experiment_on_hero_with_one_cta_arm_and_no_control_is_refused_on_every_count(
    site, slots, variants, people
):
    before = state()

    errors = refusal_of(lambda: draft(site, slots, people, [arm(variants["cta-a"], weight=1.0)]))

    assert errors == {
        "arms[0].variant": [
            "cta-a is content for slot cta, not for the experiment's slot hero: it could never be shown there."
        ],
        "arms": [
            "Mark exactly one arm as the control (is_control): none is.",
            "An experiment compares at least two arms, a control and a treatment; it has 1.",
        ],
    }
    assert state() == before


def test_weights_that_sum_to_1_within_the_tolerance_are_accepted(site, slots, variants, people):
    arms = [
        arm(variants["hero-a"], control=True, weight=0.333),
        arm(variants["hero-b"], weight=0.333),
        arm(variants["hero-c"], weight=0.333),
    ]

    experiment = draft(site, slots, people, arms)

    assert list(experiment.arms.values_list("variant__key", "weight")) == [
        ("hero-a", 0.333),
        ("hero-b", 0.333),
        ("hero-c", 0.333),
    ]


# --- on edit ----------------------------------------------------------------------------


def test_an_edit_that_moves_the_experiment_to_another_slot_is_refused_and_nothing_changes(
    site, slots, variants, people
):
    experiment = draft(site, slots, people, two_arms(variants))
    before = state()

    errors = refusal_of(lambda: approvable_edit(obj=experiment, actor=people[0], changes={"slot": slots["cta"]}))

    assert set(errors) == {"arms[0].variant", "arms[1].variant"}
    assert errors["arms[0].variant"] == [
        "hero-a is content for slot hero, not for the experiment's slot cta: it could never be shown there."
    ]
    assert state() == before


def test_an_edit_of_the_arms_without_a_control_is_refused_and_the_old_arms_stay(site, slots, variants, people):
    experiment = draft(site, slots, people, two_arms(variants))
    before = state()

    errors = refusal_of(
        lambda: experiment_edit(
            experiment=experiment,
            actor=people[0],
            changes={},
            arms=[arm(variants["hero-a"]), arm(variants["hero-b"])],
        )
    )

    assert errors == {"arms": ["Mark exactly one arm as the control (is_control): none is."]}
    assert state() == before


# --- on submit and approve ----------------------------------------------------------------


def test_a_draft_saved_around_the_service_is_refused_on_submit_and_nothing_changes(site, slots, variants, people):
    """A draft written before these rules (or by hand in the database) still cannot be submitted."""
    experiment = Experiment.objects.create(site=site, key="old", name="Old", slot=slots["hero"])
    ExperimentArm.objects.create(experiment=experiment, variant=variants["cta-a"], weight=1.0)
    before = state()

    errors = refusal_of(lambda: approval_submit(obj=experiment, requester=people[0]))

    assert errors == {
        "arms[0].variant": [
            "cta-a is content for slot cta, not for the experiment's slot hero: it could never be shown there."
        ],
        "arms": [
            "Mark exactly one arm as the control (is_control): none is.",
            "An experiment compares at least two arms, a control and a treatment; it has 1.",
        ],
    }
    assert state() == before


def test_a_second_experiment_on_a_slot_is_refused_on_submit(site, slots, variants, people):
    approved(draft(site, slots, people, two_arms(variants), key="first"), people)
    second = draft(site, slots, people, [arm(variants["hero-a"], control=True), arm(variants["hero-c"])], key="second")
    before = state()

    errors = refusal_of(lambda: approval_submit(obj=second, requester=people[0]))

    assert errors == {
        "slot": [
            "Experiment 'first' already runs on slot hero: two experiments on one slot would each show their "
            "content to the other's visitors. Stop it first, or declare both mutually exclusive "
            "(mutually_exclusive) so the slot's visitors are split between them."
        ]
    }
    assert state() == before


def test_approval_is_refused_when_another_experiment_went_live_on_the_slot_since_the_submit(
    site, slots, variants, people
):
    marketer, approver = people
    first = draft(site, slots, people, two_arms(variants), key="first")
    second = draft(site, slots, people, [arm(variants["hero-a"], control=True), arm(variants["hero-c"])], key="second")
    first_request = approval_submit(obj=first, requester=marketer)
    second_request = approval_submit(obj=second, requester=marketer)
    approval_decide(
        request=first_request, decider=approver, approve=True, checklist=checklist_all_ticked(first_request)
    )
    before = state()

    errors = refusal_of(
        lambda: approval_decide(
            request=second_request, decider=approver, approve=True, checklist=checklist_all_ticked(second_request)
        )
    )

    assert list(errors) == ["slot"]
    assert errors["slot"][0].startswith("Experiment 'first' already runs on slot hero")
    assert state() == before
    second.refresh_from_db()
    assert (second.status, second.published, second_request.status) == (Status.PENDING, None, RequestStatus.PENDING)


def test_approval_is_refused_when_an_arm_s_variant_moved_to_another_slot_since_the_submit(
    site, slots, variants, people
):
    marketer, approver = people
    experiment = draft(site, slots, people, two_arms(variants))
    request = approval_submit(obj=experiment, requester=marketer)
    approvable_edit(obj=variants["hero-b"], actor=marketer, changes={"slot": slots["cta"]})
    before = state()

    errors = refusal_of(
        lambda: approval_decide(
            request=request, decider=approver, approve=True, checklist=checklist_all_ticked(request)
        )
    )

    assert errors == {
        "arms[1].variant": [
            "hero-b is content for slot cta, not for the experiment's slot hero: it could never be shown there."
        ]
    }
    assert state() == before


def test_approval_is_refused_while_an_arm_s_variant_has_no_approved_version(site, slots, variants, people):
    marketer, approver = people
    unapproved = ContentVariant.objects.create(site=site, slot=slots["hero"], key="hero-new", name="New")
    experiment = draft(site, slots, people, [arm(variants["hero-a"], control=True), arm(unapproved)])
    request = approval_submit(obj=experiment, requester=marketer)
    before = state()

    errors = refusal_of(
        lambda: approval_decide(
            request=request, decider=approver, approve=True, checklist=checklist_all_ticked(request)
        )
    )

    assert errors == {"arms[1].variant": ["hero-new has no approved version yet: approve it (or resume it) first."]}
    assert state() == before


def test_a_rejection_needs_no_valid_design(site, slots, variants, people):
    """An approver can always send a broken request back: only approval is refused."""
    marketer, approver = people
    experiment = draft(site, slots, people, two_arms(variants), key="first")
    request = approval_submit(obj=experiment, requester=marketer)
    approved(draft(site, slots, people, [arm(variants["hero-a"], control=True), arm(variants["hero-c"])]), people)

    approval_decide(request=request, decider=approver, approve=False, comment="Another test runs on hero.")

    experiment.refresh_from_db()
    assert experiment.status == Status.DRAFT


# --- mutually exclusive experiments ---------------------------------------------------------


def test_mutually_exclusive_experiments_share_a_slot_in_ranges_placed_at_approval(site, slots, variants, people):
    first = approved(
        draft(site, slots, people, two_arms(variants), key="first", mutually_exclusive=True, traffic_share=0.5), people
    )
    second = approved(
        draft(
            site,
            slots,
            people,
            [arm(variants["hero-a"], control=True), arm(variants["hero-c"])],
            key="second",
            mutually_exclusive=True,
            traffic_share=0.3,
        ),
        people,
    )

    assert (first.status, first.exclusion_start) == (Status.LIVE, 0.0)
    assert (second.status, second.exclusion_start) == (Status.LIVE, 0.5)


def test_a_mutually_exclusive_experiment_is_refused_when_no_free_range_is_wide_enough(site, slots, variants, people):
    approved(
        draft(site, slots, people, two_arms(variants), key="first", mutually_exclusive=True, traffic_share=0.7), people
    )
    third = draft(
        site,
        slots,
        people,
        [arm(variants["hero-a"], control=True), arm(variants["hero-c"])],
        key="third",
        mutually_exclusive=True,
        traffic_share=0.5,
    )
    before = state()

    errors = refusal_of(lambda: approval_submit(obj=third, requester=people[0]))

    assert errors == {
        "traffic_share": [
            "Slot hero's mutually exclusive experiments ('first' 0%-70%) leave at most 30% of its visitors free in "
            "one range; this experiment asks for 50%. Lower its traffic share or stop one."
        ]
    }
    assert state() == before


def test_one_mutually_exclusive_experiment_beside_one_that_is_not_is_refused(site, slots, variants, people):
    approved(draft(site, slots, people, two_arms(variants), key="first", traffic_share=0.5), people)
    second = draft(
        site,
        slots,
        people,
        [arm(variants["hero-a"], control=True), arm(variants["hero-c"])],
        key="second",
        mutually_exclusive=True,
        traffic_share=0.5,
    )

    errors = refusal_of(lambda: approval_submit(obj=second, requester=people[0]))

    assert list(errors) == ["slot"]


def test_no_visitor_is_in_two_mutually_exclusive_experiments(api, site, slots, variants, people):
    approved(
        draft(site, slots, people, two_arms(variants), key="first", mutually_exclusive=True, traffic_share=0.5), people
    )
    approved(
        draft(
            site,
            slots,
            people,
            [arm(variants["hero-a"], control=True), arm(variants["hero-c"])],
            key="second",
            mutually_exclusive=True,
            traffic_share=0.5,
        ),
        people,
    )

    seen = {}
    for index in range(60):
        start(api, f"s-{index}", slots=["hero"], consent={"personalization": True})
        seen[f"v-s-{index}"] = set(
            Experiment.objects.filter(assignments__visitor__visitor_id=f"v-s-{index}").values_list("key", flat=True)
        )

    expected = {visitor: {"first" if bucket("hero", visitor, "exclusion") < 0.5 else "second"} for visitor in seen}
    assert seen == expected
    assert {key for keys in seen.values() for key in keys} == {"first", "second"}
    assert Visitor.objects.count() == 60


# --- the admin form shows the service's errors on the field they name ------------------------


def _experiment_form(site, slot, arms: list[dict], **fields) -> dict:
    data = {
        "site": site.pk,
        "key": "hero-test",
        "name": "Hero test",
        "hypothesis": "",
        "slot": slot.pk,
        "traffic_share": "1.0",
        "allocation": "fixed",
        "primary_goal": "purchase",
        "minimum_sample": "1000",
        "weight_floor": "0.05",
        "reweight_guardrail": "0.2",
        "arms-TOTAL_FORMS": str(len(arms)),
        "arms-INITIAL_FORMS": "0",
        "arms-MIN_NUM_FORMS": "0",
        "arms-MAX_NUM_FORMS": "1000",
        **fields,
    }
    for index, row in enumerate(arms):
        data[f"arms-{index}-variant"] = row["variant"]
        data[f"arms-{index}-weight"] = str(row["weight"])
        if row["is_control"]:
            data[f"arms-{index}-is_control"] = "on"
    return data


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_admin_form_shows_a_cta_arm_on_hero_and_the_missing_control_on_their_fields(
    site, slots, variants, marketer
):
    before = state()

    response = _client(marketer).post(
        reverse("admin:personalization_experiment_add"),
        _experiment_form(site, slots["hero"], [arm(variants["cta-a"], weight=1.0)]),
    )

    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    assert formset.forms[0].errors == {
        "variant": ["cta-a is content for slot cta, not for the experiment's slot hero: it could never be shown there."]
    }
    assert formset.non_form_errors() == [
        "Mark exactly one arm as the control (is_control): none is.",
        "An experiment compares at least two arms, a control and a treatment; it has 1.",
    ]
    assert state() == before


def test_the_admin_form_shows_a_one_armed_bandit_on_the_allocation_field(site, slots, variants, marketer):
    before = state()

    response = _client(marketer).post(
        reverse("admin:personalization_experiment_add"),
        _experiment_form(site, slots["hero"], [arm(variants["hero-a"], control=True, weight=1.0)], allocation="bandit"),
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "allocation": ["A bandit allocates traffic between at least two arms; it has 1."]
    }
    assert response.context["inline_admin_formsets"][0].formset.non_form_errors() == [
        "See the error on Allocation above."
    ]
    assert state() == before


def test_the_admin_form_saves_a_design_that_runs(site, slots, variants, marketer):
    response = _client(marketer).post(
        reverse("admin:personalization_experiment_add"),
        _experiment_form(site, slots["hero"], two_arms(variants)),
        follow=True,
    )

    assert response.status_code == 200
    # the power figure, when the experiment is created (no traffic yet on this test site)
    assert [str(message) for message in response.context["messages"]][0] == (
        "Power of hero-test: Not computable yet: no purchase conversions to take a baseline rate from (the site's "
        "sessions (slot hero has not been shown yet): 0 sessions in the last 14 days (0 a day), 0 with a purchase "
        "conversion). The sample size needs the control's usual conversion rate."
    )
    experiment = Experiment.objects.get()
    assert list(experiment.arms.values_list("variant__key", "is_control", "weight")) == [
        ("hero-a", True, 0.5),
        ("hero-b", False, 0.5),
    ]


def test_moving_an_approved_experiment_to_another_slot_in_the_admin_is_refused_above_its_frozen_arms(
    site, slots, variants, people
):
    marketer, _ = people
    experiment = approved(draft(site, slots, people, two_arms(variants)), people)
    data = _experiment_form(site, slots["cta"], [])
    data |= {"arms-TOTAL_FORMS": "2", "arms-INITIAL_FORMS": "2"}
    for index, row in enumerate(experiment.arms.order_by("-is_control", "id")):
        data[f"arms-{index}-id"] = row.pk
        data[f"arms-{index}-experiment"] = experiment.pk
    before = state()

    response = _client(marketer).post(reverse("admin:personalization_experiment_change", args=[experiment.pk]), data)

    assert response.status_code == 200
    assert response.context["inline_admin_formsets"][0].formset.non_form_errors() == [
        "Arm 1: hero-a is content for slot hero, not for the experiment's slot cta: it could never be shown there.",
        "Arm 2: hero-b is content for slot hero, not for the experiment's slot cta: it could never be shown there.",
    ]
    assert state() == before


def test_saving_a_draft_on_a_slot_where_another_experiment_runs_warns_before_any_submit(site, slots, variants, people):
    marketer, _ = people
    approved(draft(site, slots, people, two_arms(variants), key="first"), people)
    arms = [arm(variants["hero-a"], control=True), arm(variants["hero-c"])]

    response = _client(marketer).post(
        reverse("admin:personalization_experiment_add"), _experiment_form(site, slots["hero"], arms), follow=True
    )

    assert [str(message) for message in response.context["messages"]][1] == (
        "hero-test is saved, but would be refused on submit as things are: slot: Experiment 'first' already runs "
        "on slot hero: two experiments on one slot would each show their content to the other's visitors. Stop it "
        "first, or declare both mutually exclusive (mutually_exclusive) so the slot's visitors are split between them."
    )
    assert Experiment.objects.get(key="hero-test").status == Status.DRAFT


def test_the_submit_action_reports_the_slot_refusal_and_submits_nothing(site, slots, variants, people):
    marketer, _ = people
    approved(draft(site, slots, people, two_arms(variants), key="first"), people)
    second = draft(site, slots, people, [arm(variants["hero-a"], control=True), arm(variants["hero-c"])], key="second")

    response = _client(marketer).post(
        reverse("admin:personalization_experiment_changelist"),
        {"action": "submit_for_approval", "_selected_action": [second.pk]},
        follow=True,
    )

    assert [str(message) for message in response.context["messages"]] == [
        "second was not submitted: slot: Experiment 'first' already runs on slot hero: two experiments on one "
        "slot would each show their content to the other's visitors. Stop it first, or declare both mutually "
        "exclusive (mutually_exclusive) so the slot's visitors are split between them."
    ]
    second.refresh_from_db()
    assert second.status == Status.DRAFT
    assert not ApprovalRequest.objects.filter(object_id=second.pk, content_type__model="experiment").exists()


def test_the_approver_s_page_reports_a_refused_approval_and_the_request_stays_pending(site, slots, variants, people):
    marketer, approver = people
    second = draft(site, slots, people, [arm(variants["hero-a"], control=True), arm(variants["hero-c"])], key="second")
    request = approval_submit(obj=second, requester=marketer)
    approved(draft(site, slots, people, two_arms(variants), key="first"), people)
    before = state()

    response = _client(approver).post(
        reverse("admin:personalization_approvalrequest_change", args=[request.pk]),
        {"decision": "approve", "comment": "", "item_0": "on", "item_1": "on"},
        follow=True,
    )

    assert [str(message) for message in response.context["messages"]] == [
        "Not approved: slot: Experiment 'first' already runs on slot hero: two experiments on one slot would each "
        "show their content to the other's visitors. Stop it first, or declare both mutually exclusive "
        "(mutually_exclusive) so the slot's visitors are split between them."
    ]
    assert state() == before
