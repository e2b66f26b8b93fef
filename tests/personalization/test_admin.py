"""The admin as marketers, approvers and analysts use it, through Django's test client."""

import pytest
from django.test import Client
from django.urls import reverse

from personalization.models import (
    ApprovalRequest,
    AuditLog,
    ContentVariant,
    Experiment,
    ExperimentArm,
    Offer,
    RequestStatus,
    Slot,
    Status,
)
from personalization.services.approvals import approval_decide, approval_submit
from tests.personalization.helpers import approved, staff

VARIANT_CHECKLIST = ["Brand and tone are right", "Claims in the copy are true", "Links work"]


@pytest.fixture
def analyst(django_user_model):
    return staff(django_user_model, "ana", "Analysts")


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def slot(site):
    return Slot.objects.create(site=site, key="hero", name="Hero")


@pytest.fixture
def variant(site, slot, marketer):
    return ContentVariant.objects.create(
        site=site, slot=slot, key="hero-b", name="Hero B", payload={"headline": "Fast"}, created_by=marketer
    )


def _variant_form(site, slot, **overrides) -> dict:
    data = {
        "site": site.pk,
        "slot": slot.pk,
        "key": "hero-b",
        "name": "Hero B",
        "payload": '{"headline": "Fast"}',
        "strategy": "",
        "target_paths": "",
        "target_stages": "",
        "target_devices": "",
        "target_personas": "",
        "target_returning": "unknown",
        "offer": "",
    }
    return data | overrides


def _decide_url(request) -> str:
    return reverse("admin:personalization_approvalrequest_change", args=[request.pk])


def _ticked(checklist=VARIANT_CHECKLIST) -> dict:
    return {f"item_{index}": "on" for index in range(len(checklist))}


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def _request_state(request_pk):
    request = ApprovalRequest.objects.get(pk=request_pk)
    return request.status, request.decider_id, request.comment, request.checklist, request.decided_at


def _variant_state(variant_pk):
    variant = ContentVariant.objects.get(pk=variant_pk)
    return variant.status, variant.version, variant.published, variant.published_version


def test_marketer_creates_a_variant_through_the_add_form_as_version_1_draft(site, slot, marketer):
    response = _client(marketer).post(
        reverse("admin:personalization_contentvariant_add"), _variant_form(site, slot) | {"_save": "Save"}
    )

    assert response.status_code == 302
    variant = ContentVariant.objects.get(key="hero-b")
    assert (variant.version, variant.status, variant.published, variant.created_by) == (1, Status.DRAFT, None, marketer)
    assert variant.payload == {"headline": "Fast"}
    entry = AuditLog.objects.get()
    assert (entry.action, entry.actor, entry.object_id) == ("created", marketer, variant.pk)
    assert entry.changes["version"] == 1
    assert entry.changes["snapshot"]["payload"] == {"headline": "Fast"}


def test_submit_action_makes_a_pending_request(variant, marketer):
    response = _client(marketer).post(
        reverse("admin:personalization_contentvariant_changelist"),
        {"action": "submit_for_approval", "_selected_action": [variant.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert _messages(response) == ["Submitted for approval: hero-b v1."]
    request = ApprovalRequest.objects.get()
    assert (request.status, request.requester, request.version, request.target) == (
        RequestStatus.PENDING,
        marketer,
        1,
        variant,
    )
    variant.refresh_from_db()
    assert variant.status == Status.PENDING
    assert list(AuditLog.objects.values_list("action", flat=True)) == ["submitted"]


def test_requester_approving_own_request_in_admin_is_refused_and_nothing_changes(variant, marketer):
    request = approval_submit(obj=variant, requester=marketer)
    before = (_request_state(request.pk), _variant_state(variant.pk))

    response = _client(marketer).post(
        _decide_url(request), {"decision": "approve", "comment": "fine"} | _ticked(), follow=True
    )

    assert response.status_code == 200
    assert _messages(response) == ["Nobody approves their own request."]
    assert (_request_state(request.pk), _variant_state(variant.pk)) == before
    assert ApprovalRequest.objects.get(pk=request.pk).status == RequestStatus.PENDING
    assert ContentVariant.objects.get(pk=variant.pk).published is None
    assert list(AuditLog.objects.values_list("action", flat=True)) == ["submitted"]


def test_requester_does_not_see_the_decide_buttons_but_an_approver_does(variant, marketer, approver):
    request = approval_submit(obj=variant, requester=marketer)

    as_requester = _client(marketer).get(_decide_url(request))
    as_approver = _client(approver).get(_decide_url(request))

    assert as_requester.status_code == as_approver.status_code == 200
    assert as_requester.context["can_decide"] is False
    assert b'value="approve"' not in as_requester.content
    assert b"You submitted this request: another approver decides it." in as_requester.content
    assert as_approver.context["can_decide"] is True
    assert b'value="approve"' in as_approver.content
    for item in VARIANT_CHECKLIST:
        assert item.encode() in as_approver.content


def test_approving_without_every_checklist_item_is_a_form_error_and_nothing_changes(variant, marketer, approver):
    request = approval_submit(obj=variant, requester=marketer)
    before = (_request_state(request.pk), _variant_state(variant.pk))

    response = _client(approver).post(
        _decide_url(request), {"decision": "approve", "item_0": "on", "item_1": "on", "comment": ""}
    )

    assert response.status_code == 200
    refusal = "Tick every checklist item before approving. Not ticked: Links work."
    assert response.context["form"].non_field_errors() == [refusal]
    assert refusal.encode() in response.content
    assert (_request_state(request.pk), _variant_state(variant.pk)) == before
    assert list(AuditLog.objects.values_list("action", flat=True)) == ["submitted"]


def test_approving_with_the_checklist_ticked_puts_the_variant_live(variant, marketer, approver):
    request = approval_submit(obj=variant, requester=marketer)

    response = _client(approver).post(
        _decide_url(request), {"decision": "approve", "comment": "good copy"} | _ticked(), follow=True
    )

    assert response.status_code == 200
    assert _messages(response) == ["hero-b v1 approved."]
    variant.refresh_from_db()
    assert (variant.status, variant.version, variant.published_version) == (Status.LIVE, 1, 1)
    assert variant.published["payload"] == {"headline": "Fast"}
    request.refresh_from_db()
    assert (request.status, request.decider, request.comment) == (RequestStatus.APPROVED, approver, "good copy")
    assert request.checklist == dict.fromkeys(VARIANT_CHECKLIST, True)
    approved = AuditLog.objects.get(action="approved")
    assert (approved.actor, approved.object_id, approved.changes["version"]) == (approver, variant.pk, 1)


def test_rejecting_needs_a_comment_and_then_returns_the_variant_to_draft(variant, marketer, approver):
    request = approval_submit(obj=variant, requester=marketer)
    client = _client(approver)

    without_comment = client.post(_decide_url(request), {"decision": "reject", "comment": " "})
    assert without_comment.context["form"].errors == {
        "comment": ["Say why it is rejected, so the requester can fix it."]
    }
    assert ApprovalRequest.objects.get(pk=request.pk).status == RequestStatus.PENDING

    client.post(_decide_url(request), {"decision": "reject", "comment": "tone is off"})
    request.refresh_from_db()
    variant.refresh_from_db()
    assert (request.status, request.comment, request.decider) == (RequestStatus.REJECTED, "tone is off", approver)
    assert (variant.status, variant.published) == (Status.DRAFT, None)


def test_editing_a_live_variant_in_the_admin_makes_version_2_while_version_1_keeps_serving(
    site, slot, variant, marketer, approver
):
    approved(variant, (marketer, approver))

    response = _client(marketer).post(
        reverse("admin:personalization_contentvariant_change", args=[variant.pk]),
        _variant_form(site, slot, payload='{"headline": "Faster"}') | {"_save": "Save"},
        follow=True,
    )

    assert response.status_code == 200
    assert (
        "Saved as version 2 (draft). Version 1 keeps serving until this one is approved: submit it for approval."
        in (_messages(response))
    )
    variant.refresh_from_db()
    assert (variant.version, variant.status, variant.published_version) == (2, Status.DRAFT, 1)
    assert variant.payload == {"headline": "Faster"}
    assert variant.published["payload"] == {"headline": "Fast"}
    assert variant.serving is True
    edited = AuditLog.objects.get(action="edited")
    assert (edited.actor, edited.changes) == (
        marketer,
        {"version": 2, "diff": {"payload": {"from": {"headline": "Fast"}, "to": {"headline": "Faster"}}}},
    )


def test_saving_an_unchanged_form_makes_no_new_version(site, slot, variant, marketer):
    _client(marketer).post(
        reverse("admin:personalization_contentvariant_change", args=[variant.pk]),
        _variant_form(site, slot) | {"_save": "Save"},
    )

    variant.refresh_from_db()
    assert (variant.version, variant.status) == (1, Status.DRAFT)
    assert not AuditLog.objects.exists()


def test_approvals_queue_lists_pending_first_and_shows_the_diff_of_version_2(variant, marketer, approver):
    approved(variant, (marketer, approver))
    client = _client(marketer)
    client.post(
        reverse("admin:personalization_contentvariant_change", args=[variant.pk]),
        _variant_form(variant.site, variant.slot, payload='{"headline": "Faster"}') | {"_save": "Save"},
    )
    client.post(
        reverse("admin:personalization_contentvariant_changelist"),
        {"action": "submit_for_approval", "_selected_action": [variant.pk]},
    )
    pending = ApprovalRequest.objects.get(status=RequestStatus.PENDING)

    queue = _client(approver).get(reverse("admin:personalization_approvalrequest_changelist"))
    page = _client(approver).get(_decide_url(pending))

    assert queue.status_code == 200
    rows = list(queue.context["cl"].result_list)
    assert [(row.version, row.status) for row in rows] == [(2, RequestStatus.PENDING), (1, RequestStatus.APPROVED)]
    assert [queue.context["cl"].model_admin.changed_fields(row) for row in rows] == ["payload", "first version"]
    assert page.status_code == 200
    assert page.context["diff"] == [("payload", '{\n  "headline": "Fast"\n}', '{\n  "headline": "Faster"\n}')]
    assert b"Faster" in page.content


def test_my_requests_filter_shows_only_what_i_submitted(site, slot, variant, marketer, django_user_model):
    colleague = staff(django_user_model, "max", "Marketers")
    other = ContentVariant.objects.create(site=site, slot=slot, key="hero-c", name="Hero C", created_by=colleague)
    mine = approval_submit(obj=variant, requester=marketer)
    approval_submit(obj=other, requester=colleague)

    response = _client(marketer).get(reverse("admin:personalization_approvalrequest_changelist"), {"whose": "mine"})

    assert response.status_code == 200
    assert [row.pk for row in response.context["cl"].result_list] == [mine.pk]


def test_nobody_edits_an_approval_request_directly(variant, marketer, approver):
    request = approval_submit(obj=variant, requester=marketer)
    client = _client(approver)

    add = client.get(reverse("admin:personalization_approvalrequest_add"))
    delete = client.post(reverse("admin:personalization_approvalrequest_delete", args=[request.pk]), {"post": "yes"})
    forged = client.post(_decide_url(request), {"status": "approved", "decider": approver.pk})

    assert (add.status_code, delete.status_code, forged.status_code) == (403, 403, 200)
    assert _request_state(request.pk)[:2] == (RequestStatus.PENDING, None)
    assert ContentVariant.objects.get(pk=variant.pk).published is None


def test_analyst_cannot_open_the_variant_add_page(analyst, variant):
    client = _client(analyst)

    assert client.get(reverse("admin:personalization_contentvariant_add")).status_code == 403
    assert client.get(reverse("admin:personalization_contentvariant_changelist")).status_code == 200
    assert client.get(reverse("admin:personalization_approvalrequest_changelist")).status_code == 200


def test_publish_action_puts_an_offer_without_discount_live_and_refuses_a_discount(site, marketer):
    plain = Offer.objects.create(site=site, name="Tee", sku="T1", price="20.00", created_by=marketer)
    discounted = Offer.objects.create(
        site=site, name="Hoodie", sku="H1", price="50.00", discount_percent="20", created_by=marketer
    )

    response = _client(marketer).post(
        reverse("admin:personalization_offer_changelist"),
        {"action": "publish", "_selected_action": [plain.pk, discounted.pk]},
        follow=True,
    )

    assert sorted(_messages(response)) == [
        "Hoodie (H1): An offer with a discount goes live only through an approved request.",
        "Tee (T1) version 1 is live.",
    ]
    plain.refresh_from_db()
    assert (plain.status, plain.published_version, plain.published["sku"]) == (Status.LIVE, 1, "T1")
    discounted.refresh_from_db()
    assert (discounted.status, discounted.published, discounted.published_version) == (Status.DRAFT, None, None)
    assert list(AuditLog.objects.values_list("action", "object_id")) == [("published", plain.pk)]


def test_experiment_created_with_arms_and_arm_edits_make_a_new_version(site, slot, marketer):
    control = ContentVariant.objects.create(site=site, slot=slot, key="hero-a", name="Hero A")
    treatment = ContentVariant.objects.create(site=site, slot=slot, key="hero-b", name="Hero B")
    form = {
        "site": site.pk,
        "key": "hero-test",
        "name": "Hero test",
        "hypothesis": "A faster headline converts more",
        "slot": slot.pk,
        "traffic_share": "1.0",
        "allocation": "fixed",
        "primary_goal": "purchase",
        "minimum_sample": "1000",
        "weight_floor": "0.05",
        "reweight_guardrail": "0.2",
        "arms-TOTAL_FORMS": "2",
        "arms-INITIAL_FORMS": "0",
        "arms-MIN_NUM_FORMS": "0",
        "arms-MAX_NUM_FORMS": "1000",
        "arms-0-variant": control.pk,
        "arms-0-is_control": "on",
        "arms-0-weight": "0.5",
        "arms-1-variant": treatment.pk,
        "arms-1-weight": "0.5",
        "_save": "Save",
    }
    client = _client(marketer)

    assert client.post(reverse("admin:personalization_experiment_add"), form).status_code == 302
    experiment = Experiment.objects.get(key="hero-test")
    arms = list(experiment.arms.values_list("id", flat=True))
    assert (experiment.version, experiment.status, experiment.created_by) == (1, Status.DRAFT, marketer)
    assert list(experiment.arms.values_list("variant__key", "is_control", "weight")) == [
        ("hero-a", True, 0.5),
        ("hero-b", False, 0.5),
    ]

    edit = form | {
        "arms-INITIAL_FORMS": "2",
        "arms-0-id": arms[0],
        "arms-0-experiment": experiment.pk,
        "arms-0-weight": "0.7",
        "arms-1-id": arms[1],
        "arms-1-experiment": experiment.pk,
        "arms-1-weight": "0.3",
    }
    assert client.post(reverse("admin:personalization_experiment_change", args=[experiment.pk]), edit).status_code == (
        302
    )

    experiment.refresh_from_db()
    assert (experiment.version, experiment.status) == (2, Status.DRAFT)
    assert list(experiment.arms.values_list("variant__key", "is_control", "weight")) == [
        ("hero-a", True, 0.7),
        ("hero-b", False, 0.3),
    ]
    edited = AuditLog.objects.get(action="edited")
    assert edited.changes["diff"]["arms"]["to"] == [
        {"variant": control.pk, "is_control": True, "weight": 0.7, "is_paused": False},
        {"variant": treatment.pk, "is_control": False, "weight": 0.3, "is_paused": False},
    ]


def test_two_control_arms_are_a_form_error_and_nothing_is_saved(site, slot, marketer):
    first = ContentVariant.objects.create(site=site, slot=slot, key="hero-a", name="Hero A")
    second = ContentVariant.objects.create(site=site, slot=slot, key="hero-b", name="Hero B")

    response = _client(marketer).post(
        reverse("admin:personalization_experiment_add"),
        {
            "site": site.pk,
            "key": "hero-test",
            "name": "Hero test",
            "slot": slot.pk,
            "traffic_share": "1.0",
            "allocation": "fixed",
            "primary_goal": "purchase",
            "minimum_sample": "1000",
            "weight_floor": "0.05",
            "reweight_guardrail": "0.2",
            "arms-TOTAL_FORMS": "2",
            "arms-INITIAL_FORMS": "0",
            "arms-MIN_NUM_FORMS": "0",
            "arms-MAX_NUM_FORMS": "1000",
            "arms-0-variant": first.pk,
            "arms-0-is_control": "on",
            "arms-0-weight": "0.5",
            "arms-1-variant": second.pk,
            "arms-1-is_control": "on",
            "arms-1-weight": "0.5",
        },
    )

    assert response.status_code == 200
    assert response.context["inline_admin_formsets"][0].formset.non_form_errors() == [
        "Mark exactly one arm as the control (is_control): arms 1, 2 are."
    ]
    assert not Experiment.objects.exists()
    assert not ExperimentArm.objects.exists()


def test_every_personalization_admin_page_renders(site, slot, variant, marketer, approver, django_user_model):
    boss = django_user_model.objects.create_superuser("boss", password="pw-boss-12345")
    request = approval_submit(obj=variant, requester=marketer)
    approval_decide(request=request, decider=approver, approve=True, checklist=dict.fromkeys(VARIANT_CHECKLIST, True))
    offer = Offer.objects.create(site=site, name="Tee", sku="T1", price="20.00")
    experiment = Experiment.objects.create(site=site, key="hero-test", name="Hero test", slot=slot)
    ExperimentArm.objects.create(experiment=experiment, variant=variant, is_control=True)
    pages = [
        reverse(f"admin:personalization_{model}_changelist")
        for model in (
            "offer",
            "slot",
            "contentvariant",
            "experiment",
            "approvalrequest",
            "approvaltemplate",
            "auditlog",
            "optimizationproposal",
            "assignment",
            "exposure",
            "personalizationrecord",
        )
    ] + [
        reverse("admin:personalization_contentvariant_change", args=[variant.pk]),
        reverse("admin:personalization_offer_change", args=[offer.pk]),
        reverse("admin:personalization_experiment_change", args=[experiment.pk]),
        reverse("admin:personalization_auditlog_change", args=[AuditLog.objects.first().pk]),
        _decide_url(request),
    ]

    for user in (boss, marketer, approver):
        client = _client(user)
        statuses = {page: client.get(page).status_code for page in pages}
        expected = 403 if user is not boss else 200
        template_page = reverse("admin:personalization_approvaltemplate_changelist")
        assert statuses == {page: (expected if page == template_page else 200) for page in pages}

    page = _client(approver).get(reverse("admin:personalization_contentvariant_change", args=[variant.pk]))
    assert b"Currently serving" in page.content
    assert b"Version 1 (serving)" in page.content
