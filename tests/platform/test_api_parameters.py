"""Path and query parameters that PostgreSQL cannot store are a 400 naming them, on every
API view (``journeys.api.ApiView``), before any query reads them.

Found by the schema test (``tests/platform/test_api_contract.py``): a NUL character in a
URL's ``session_id``, ``visitor_id`` or ``sku``, or in a free-text query parameter such as
the dashboards' ``persona`` or the scarcity report's ``goal``, reached a query and failed
there with a 500.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from journeys.services.sites import site_secret_rotate
from tests.journeys.helpers import row_counts, start

pytestmark = pytest.mark.django_db

REFUSED = ["Text must not contain NUL characters or unpaired surrogates."]


@pytest.fixture
def backend(site) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {site_secret_rotate(site=site)}")
    return client


def test_nul_in_the_session_id_of_the_url_is_refused_naming_it(api):
    start(api, "s-1")
    before = row_counts()

    stage = api.post("/api/v1/sessions/s-1%00/stage", {"new_stage": "decision"}, format="json")
    conversion = api.post(
        "/api/v1/sessions/s-1%00/conversions",
        {"event_id": "3d4c5b6a-7980-4a1b-8c2d-3e4f5a6b7c8d", "type": "purchase"},
        format="json",
    )

    assert (stage.status_code, stage.json()) == (400, {"session_id": REFUSED})
    assert (conversion.status_code, conversion.json()) == (400, {"session_id": REFUSED})
    assert row_counts() == before


def test_nul_in_the_visitor_id_of_the_url_is_refused_naming_it(api, privacy_api):
    start(api, "s-1", visitor_id="v-1")
    before = row_counts()

    export = privacy_api.get("/api/v1/visitors/v-1%00")
    erase = privacy_api.delete("/api/v1/visitors/v-1%00")

    assert (export.status_code, export.json()) == (400, {"visitor_id": REFUSED})
    assert (erase.status_code, erase.json()) == (400, {"visitor_id": REFUSED})
    assert row_counts() == before


def test_nul_in_the_sku_of_the_url_is_refused_naming_it(backend):
    response = backend.put("/api/v1/offers/A1%00/stock", {"stock_remaining": 3}, format="json")

    assert (response.status_code, response.json()) == (400, {"sku": REFUSED})


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/api/v1/analytics/scarcity?goal=purchase%00", "goal"),
        ("/api/v1/analytics/overview?persona=Tech%00", "persona"),
        ("/api/v1/analytics/funnel?unknown%00=1", "unknown\x00"),
    ],
)
def test_nul_in_a_query_parameter_is_refused_naming_it(staff_api, path, name):
    response = staff_api.get(path)

    assert (response.status_code, response.json()) == (400, {name: REFUSED})


def test_parameters_are_checked_only_after_the_caller_is_authenticated(db):
    response = APIClient().get("/api/v1/visitors/v-1%00")

    assert response.status_code == 401
