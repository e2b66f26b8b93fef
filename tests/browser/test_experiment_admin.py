"""The experiment admin in Chromium: the form refuses a design that cannot run on the fields the
service names, the approver reads arms by name beside the power figure, and a marketer asks for a
winner with the action buttons. Screenshots in test-artifacts/screenshots/experiment-*.png."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from personalization.models import ApprovalRequest, ContentVariant, Experiment, Slot
from personalization.services.approvals import approvable_create, approval_submit
from tests.browser.conftest import STAFF_PASSWORD, login
from tests.personalization.helpers import approved
from tests.personalization.optimizer_helpers import convert

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def logins(django_user_model, _staff_password_hash):
    """(marketer, approver) who log in with the browser staff password."""
    made = []
    for username, group in [("web-marketer", "Marketers"), ("web-approver", "Approvers")]:
        user = django_user_model.objects.create(username=username, is_staff=True, password=_staff_password_hash)
        user.groups.add(Group.objects.get(name=group))
        made.append(user)
    return tuple(made)


@pytest.fixture
def shop(site, logins):
    """Slots hero and cta with approved variants, and two weeks of traffic on hero."""
    slots = {key: Slot.objects.create(site=site, key=key, name=key.title()) for key in ("hero", "cta")}
    variants = {}
    for key, slot, name in [
        ("hero-a", "hero", "Calm headline"),
        ("hero-b", "hero", "Bold headline"),
        ("cta-a", "cta", "Buy now button"),
    ]:
        variant = ContentVariant.objects.create(site=site, slot=slots[slot], key=key, name=name, payload={})
        variants[key] = approved(variant, logins)
    _traffic(site, variants["hero-a"], sessions=2800, conversions=140)
    return slots, variants


def _traffic(site, variant, *, sessions: int, conversions: int) -> None:
    from journeys.models import JourneySession, Visitor
    from personalization.models import Exposure

    now = timezone.now()
    visitor = Visitor.objects.create(site=site, visitor_id="v-history")
    made = JourneySession.objects.bulk_create(
        JourneySession(
            site=site,
            visitor=visitor,
            session_id=f"s-history-{index}",
            device_type="mobile",
            started_at=now - timedelta(days=14) + timedelta(minutes=7 * (index + 1)),
            last_activity_at=now,
            journey_path="standard_conversion_funnel",
            conversion_probability=0.1,
            request_hash="h",
        )
        for index in range(sessions)
    )
    Exposure.objects.bulk_create(
        Exposure(session=session, variant=variant, variant_version=1, exposed_at=session.started_at) for session in made
    )
    for session in made[:conversions]:
        convert([session], "purchase", session.started_at + timedelta(minutes=5))


def test_the_form_shows_the_service_s_refusals_on_their_fields(site, shop, logins, new_page, screenshot):
    slots, variants = shop
    page = new_page()
    login(page, username="web-marketer", password=STAFF_PASSWORD, next_url="/admin/personalization/experiment/add/")
    page.select_option("#id_site", str(site.pk))
    page.fill("#id_key", "hero-test")
    page.fill("#id_name", "Hero test")
    page.select_option("#id_slot", str(slots["hero"].pk))
    page.select_option("#id_arms-0-variant", str(variants["cta-a"].pk))
    page.fill("#id_arms-0-weight", "1")
    page.click("input[name=_save]")

    page.wait_for_selector(".errornote")
    arm_error = page.inner_text("#arms-0 .errorlist")
    above = page.inner_text("#arms-group .errorlist.nonform")
    screenshot(page, "experiment-form-errors")

    assert arm_error == (
        "cta-a is content for slot cta, not for the experiment's slot hero: it could never be shown there."
    )
    assert above.splitlines() == [
        "Mark exactly one arm as the control (is_control): none is.",
        "An experiment compares at least two arms, a control and a treatment; it has 1.",
    ]
    assert not Experiment.objects.exists()


def test_the_approver_reads_arms_by_name_and_the_power_and_the_marketer_asks_for_a_winner(
    site, shop, logins, new_page, screenshot
):
    slots, variants = shop
    marketer, approver = logins
    experiment = approvable_create(
        obj=Experiment(site=site, key="hero-test", name="Hero test", slot=slots["hero"], hypothesis="Bold sells."),
        actor=marketer,
        arms=[
            {"variant": variants["hero-a"].pk, "is_control": True, "weight": 0.5},
            {"variant": variants["hero-b"].pk, "is_control": False, "weight": 0.5},
        ],
    )
    request = approval_submit(obj=experiment, requester=marketer)

    page = new_page()
    login(page, username="web-approver", password=STAFF_PASSWORD)
    page.goto(f"/admin/personalization/approvalrequest/{request.pk}/change/")
    diff = page.inner_text(".approval-diff")
    power = page.inner_text(".approval-power")
    screenshot(page, "experiment-approval-arms-and-power")
    assert "hero-a (Calm headline, slot hero): control, weight 50%" in diff
    assert "hero-b (Bold headline, slot hero): treatment, weight 50%" in diff
    assert power.startswith("78,785 exposed sessions per arm (2 arms) detect a +10% relative lift in the purchase rate")
    assert "Basis: slot hero's exposed sessions: 2,800 sessions in the last 14 days (200 a day)" in power

    for checkbox in page.query_selector_all(".approval-checklist input[type=checkbox]"):
        checkbox.check()
    page.click("button[value=approve]")
    page.wait_for_url("**/approvalrequest/")

    page = new_page()
    login(page, username="web-marketer", password=STAFF_PASSWORD)
    page.goto(f"/admin/personalization/experiment/{experiment.pk}/change/")
    buttons = [link.text_content() for link in page.query_selector_all(".object-tools a")]
    screenshot(page, "experiment-action-buttons")
    assert buttons[:4] == ["Request stop", "Declare a winner", "Pause an arm", "Resume an arm"]

    page.click("a.request-declare_winner")
    page.select_option("#id_variant", str(variants["hero-b"].pk))
    page.fill("#id_reason", "Bold headline converts better on every day of the last two weeks.")
    screenshot(page, "experiment-request-winner")
    page.click("input[type=submit]")
    page.wait_for_selector(".approval-summary")
    screenshot(page, "experiment-winner-request-pending")

    asked = ApprovalRequest.objects.get(content_type__model="optimizationproposal")
    assert (asked.requester, asked.status, asked.snapshot["proposed"]) == (
        marketer,
        "pending",
        {"variant": variants["hero-b"].pk, "key": "hero-b"},
    )
