"""The OpenAPI schema is the API's contract: schemathesis drives every operation of
``/api/schema/`` against the real app (in process, through WSGI) and checks each real
answer against it: no 5xx, no undocumented status code or content type, every body
matching its declared shape.

The site has real data (sessions, an experiment with traffic, a live offer with a
low-stock cue, a visitor with consent), holds exactly what the documented examples
name (``journeys.api_schema``: session ``s-123``, visitor ``v-9``, slots ``hero`` and
``offer_banner``, SKUs ``A1`` and ``B2``, experiment ``hero-test``), and every security
scheme has a credential: the site's public key, its secret key and a staff token. So the
examples and many generated cases reach their 2xx answers; the test asserts that every
operation answered at least one.

Bounded for CI: a fixed seed, few examples per operation, no shrinking, no stateful
phase. The counts of the last run are written to ``test-artifacts/api-contract.json``.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import schemathesis
from django.conf import settings
from django.contrib.auth.models import User
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.pytest.lazy import get_all_tests
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application
from journeys.api_schema import EXAMPLE_SESSION, EXAMPLE_VISITOR
from journeys.services.sites import site_secret_rotate
from personalization.models import ContentVariant, Experiment, Slot
from personalization.services.approvals import snapshot
from tests.analytics.dashboard_data import hero_experiment, low_stock_rule, roll_up, shop_traffic
from tests.journeys.helpers import start
from tests.personalization.scarcity_helpers import live_offer, reload_config

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
MAX_EXAMPLES = 12
SEED = 20261121
REPORT = Path(settings.BASE_DIR) / "test-artifacts" / "api-contract.json"


@pytest.fixture
def contract_site(site, api, django_user_model):
    """The site with real data, and the examples' data."""
    shop_traffic(api)
    experiment = hero_experiment(site)
    _serve(experiment)
    low_stock_rule(site, api, django_user_model)
    people = User.objects.get(username="mia"), User.objects.get(username="ada")
    live_offer(site, people, sku="B2", name="Charging case", stock=40)
    Slot.objects.create(site=site, key="hero", name="Hero")
    reload_config()
    consent = {"personalization": True, "cross_device": True}
    response = start(api, EXAMPLE_SESSION, visitor_id=EXAMPLE_VISITOR, consent=consent, slots=["offer_banner"])
    assert response.status_code == 201, response.json()
    roll_up()
    return site


def _serve(experiment: Experiment) -> None:
    """Publish the optimizer tests' experiment (stored with a partial snapshot) as an approval
    would, so the decision engine serves it like any approved experiment."""
    for obj in [*ContentVariant.objects.filter(arms__experiment=experiment), experiment]:
        obj.published = snapshot(obj)
        obj.save(update_fields=["published"])


@pytest.fixture
def _connection_kept_across_requests():
    """The WSGI app closes the database connection after each request, and with it the test's
    transaction; Django's test client keeps it the same way."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def _without_rate_limits(settings):
    """Schemathesis sends some 1,300 browser calls from one address within a minute or two;
    the rate limits have tests of their own (tests/journeys/test_rate_limits.py)."""
    settings.RATE_LIMIT_ADDRESS_REQUESTS = 0
    settings.RATE_LIMIT_SITE_REQUESTS = 0


@pytest.fixture
def api_schema(contract_site, privacy_officer, _connection_kept_across_requests, _without_rate_limits):
    # A staff account that may call every staff operation, the visitor export and erasure included.
    token = Token.objects.create(user=privacy_officer).key
    public_key = contract_site.public_key
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {"max-examples": MAX_EXAMPLES, "no-shrink": True, "database": "none"},
            "phases": {"stateful": {"enabled": False}},
            "auth": {
                "openapi": {
                    "SiteKey": {"api_key": public_key},
                    "SiteKeyQuery": {"api_key": public_key},
                    "SiteSecretKey": {"bearer": site_secret_rotate(site=contract_site)},
                    "tokenAuth": {"api_key": f"Token {token}"},
                }
            },
            "dictionaries": {
                "sessions": {"values": [EXAMPLE_SESSION, "s-buyer", "s-cue"]},
                "visitors": {"values": [EXAMPLE_VISITOR, "v-s-buyer"]},
                "skus": {"values": ["A1", "B2"]},
                "experiments": {"values": ["hero-test"]},
                "site_keys": {"values": [public_key]},
            },
            "parameters": {
                # Staff endpoints name the site with its public key.
                "header.X-Site-Key": {"dictionary": "site_keys", "probability": 0.9},
                "path.session_id": {"dictionary": "sessions", "probability": 0.6},
                "path.visitor_id": {"dictionary": "visitors", "probability": 0.6},
                "path.sku": {"dictionary": "skus", "probability": 0.6},
                "path.key": {"dictionary": "experiments", "probability": 0.6},
            },
        }
    )
    return schemathesis.openapi.from_wsgi("/api/schema/", application, config=config)


def test_every_answer_matches_the_schema(api_schema):
    statuses: dict[str, Counter] = defaultdict(Counter)

    def call_and_check(case):
        # A failed statement aborts the test's transaction: roll such a case back so the
        # cases after it still run (and its 500 is still reported).
        savepoint = transaction.savepoint()
        response = case.call()
        if response.status_code >= 500:
            transaction.savepoint_rollback(savepoint)
        else:
            transaction.savepoint_commit(savepoint)
        statuses[case.operation.label][response.status_code] += 1
        case.validate_response(response, checks=CHECKS)

    failures = {}
    # schemathesis' own pytest integration (``from_fixture``) does not run on pytest 9.2; this
    # is what it runs per operation: the examples, coverage and fuzzing phases as one
    # Hypothesis test.
    for result in get_all_tests(schema=api_schema, test_func=call_and_check, settings=None, given_kwargs={}):
        operation, operation_test = result.ok()
        try:
            operation_test()
        except (Exception, BaseExceptionGroup) as error:  # noqa: BLE001 - every operation runs; all are reported
            failures[operation.label] = error

    report = {
        "operations": len(statuses),
        "cases": sum(sum(counts.values()) for counts in statuses.values()),
        "per_operation": {label: dict(sorted(counts.items())) for label, counts in sorted(statuses.items())},
    }
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=2))
    print(f"\nAPI contract: {report['operations']} operations, {report['cases']} cases")
    assert {label: _failure_text(error) for label, error in failures.items()} == {}
    assert report["operations"] == len(list(api_schema.get_all_operations()))
    without_success = [label for label, counts in statuses.items() if not any(200 <= s < 300 for s in counts)]
    assert without_success == []


def _failure_text(error: BaseException) -> str:
    """What schemathesis found, with each sub-failure's message and the request to reproduce it."""
    parts = [str(error)]
    parts += [str(inner) for inner in getattr(error, "exceptions", ())]
    return "\n".join(parts)
