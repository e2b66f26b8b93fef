"""A privacy officer erases a visitor in the admin, in headless Chromium: the action, its
confirmation page, and what is left afterwards."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from journeys.models import Visitor
from journeys.services.sessions import SessionStart, session_start
from journeys.services.sites import site_create
from tests.browser.conftest import STAFF_PASSWORD, STAFF_USERNAME, login
from tests.journeys.helpers import tables_containing

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_privacy_officer_erases_a_visitor_after_the_confirmation_page(new_page, browser_staff_user, screenshot):
    # Given a privacy officer and two visitors, one with two sessions
    browser_staff_user.groups.add(Group.objects.get(name="Privacy officers"))
    site = site_create(name="Shop", domain="shop.example")
    for session_id, visitor_id in (("ann-1", "v-ann"), ("ann-2", "v-ann"), ("bob-1", "v-bob")):
        session_start(site=site, data=SessionStart(session_id=session_id, visitor_id=visitor_id, device_type="mobile"))
    page = new_page()
    login(page, username=STAFF_USERNAME, password=STAFF_PASSWORD, next_url="/admin/journeys/visitor/")

    # When they pick the erase action for v-ann
    page.locator("tr", has_text="v-ann").locator("input.action-select").check()
    page.select_option("select[name=action]", "erase_visitors")
    page.click("button[name=index]")

    # Then a confirmation page says what goes, and nothing is gone yet
    page.wait_for_selector("text=Erasing cannot be undone")
    assert "2 sessions" in page.inner_text("#content")
    screenshot(page, "admin-visitor-erase-confirmation")
    assert Visitor.objects.filter(visitor_id="v-ann").exists()

    # And after confirming, v-ann is gone everywhere and v-bob stays
    page.click("input[type=submit][value='Yes, erase them']")
    page.wait_for_selector("text=Erased 1 visitor and everything held about them.")
    screenshot(page, "admin-visitor-erased")
    assert list(Visitor.objects.values_list("visitor_id", flat=True)) == ["v-bob"]
    assert tables_containing("v-ann") == []
    assert tables_containing("ann-1") == []
