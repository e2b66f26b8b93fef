"""An erasure wins every race with its visitor's own traffic (journeys.visitor_lock).

Real threads, each with its own PostgreSQL connection, through the API: session starts,
decisions, events, stage moves and conversions of one visitor while another thread
erases that visitor again and again.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter

import pytest
from django.db import connection
from rest_framework.test import APIClient

from journeys.models import JourneySession, Visitor
from personalization.models import TriggerType
from personalization.services.scarcity.evidence import scarcity_evidence_refresh
from tests.journeys.helpers import event, tables_containing
from tests.personalization.conftest import people  # noqa: F401 - a fixture used below
from tests.personalization.scarcity_helpers import carrying_variant, live_offer, make_rule

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

VISITOR = "v-race"
# The race runs for at least MIN_SECONDS and until the eraser erased ERASURES times (on a
# busy machine that takes longer), at most MAX_SECONDS.
MIN_SECONDS, MAX_SECONDS, ERASURES = 3.0, 90.0, 10
UNKNOWN_SESSION = {"session_id": ["Unknown session for this site."]}


class Traffic:
    """Runs ``step(client, n)`` in a loop on its own thread and connection until stopped,
    recording every answer's status and every exception."""

    def __init__(self, name: str, client: APIClient, step, stop: threading.Event) -> None:
        self.name, self.client, self.step, self.stop = name, client, step, stop
        self.statuses: Counter = Counter()
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self.run, name=name)

    def run(self) -> None:
        n = 0
        try:
            while not self.stop.is_set():
                n += 1
                try:
                    self.statuses.update(self.step(self.client, n))
                except Exception as error:  # a 500 raises in the test client
                    self.errors.append(f"{self.name} #{n}: {type(error).__name__}: {error}")
        finally:
            connection.close()


def recent_sessions() -> list[str]:
    return list(JourneySession.objects.filter(visitor__visitor_id=VISITOR).values_list("session_id", flat=True))


def answer(response, allowed: dict[int, object]) -> list[str]:
    """The answer's status, checked against ``allowed``: status -> expected JSON body (or None: any)."""
    expected = allowed.get(response.status_code, "refused")
    if expected == "refused":
        raise AssertionError(f"{response.status_code}: {response.content[:300]!r}")
    if expected is not None:
        assert response.json() == expected, response.json()
    return [str(response.status_code)]


def not_found(session_id: str) -> dict:
    return {"detail": f"No session '{session_id}' for this site.", "code": "session_not_found"}


def start_step(client, n):
    session_id = f"race-{n % 6}"  # new sessions and repeats of erased ones
    response = client.post(
        "/api/v1/sessions",
        {
            "session_id": session_id,
            "visitor_id": VISITOR,
            "device": {"type": "mobile"},
            "entry_point": {"source": "tiktok"},
            "consent": {"personalization": True, "cross_device": True},
        },
        format="json",
    )
    return answer(response, {201: None, 200: None})


def decide_step(client, n):
    statuses = []
    for session_id in recent_sessions()[-2:]:
        response = client.post("/api/v1/decide", {"session_id": session_id, "slots": ["offer_banner"]}, format="json")
        statuses += answer(response, {200: None, 404: not_found(session_id)})
    return statuses


def events_step(client, n):
    sessions = recent_sessions()
    if not sessions:
        return []
    batch = [event(session_id) for session_id in sessions[-3:] for _ in range(5)]
    response = client.post("/api/v1/events", {"events": batch}, format="json")
    answer(response, {200: None})
    body = response.json()
    assert body["accepted"] + len(body["rejected"]) == len(batch), body
    assert all(rejection["errors"] == UNKNOWN_SESSION for rejection in body["rejected"]), body
    return ["event stored"] * body["accepted"] + ["event refused"] * len(body["rejected"])


def stage_step(client, n):
    statuses = []
    for session_id in recent_sessions()[-2:]:
        stage = ("consideration", "decision", "awareness")[n % 3]
        response = client.post(f"/api/v1/sessions/{session_id}/stage", {"new_stage": stage}, format="json")
        statuses += answer(response, {200: None, 404: not_found(session_id)})
    return statuses


def convert_step(client, n):
    statuses = []
    for session_id in recent_sessions()[-1:]:
        response = client.post(
            f"/api/v1/sessions/{session_id}/conversions",
            {"event_id": str(uuid.uuid4()), "type": "purchase", "value": "19.90", "currency": "EUR"},
            format="json",
        )
        statuses += answer(response, {201: None, 404: not_found(session_id)})
    return statuses


def identify_step(client, n):
    statuses = []
    for session_id in recent_sessions()[-1:]:
        response = client.post(
            "/api/v1/identify",
            {"session_id": session_id, "identifier": "race@example.com", "method": "email"},
            format="json",
        )
        statuses += answer(response, {200: None, 404: not_found(session_id)})
    return statuses


def erase_step(client, n):
    response = client.delete(f"/api/v1/visitors/{VISITOR}")
    answer(
        response, {204: None, 404: {"detail": f"No visitor '{VISITOR}' for this site.", "code": "visitor_not_found"}}
    )
    return ["erased" if response.status_code == 204 else "nothing to erase"]


@pytest.fixture
def offer_with_cue(site, people):  # noqa: F811 - the fixture imported above
    """A live offer with its banner variant and a true low-stock cue: decisions and stage
    moves write exposures, personalization records, holdouts and the claims ledger."""
    offer = live_offer(site, people, stock=3)
    carrying_variant(site, offer, people)
    make_rule(site, offer, TriggerType.LOW_STOCK, people)
    scarcity_evidence_refresh()
    return offer


def test_erasure_wins_every_race_with_the_visitors_traffic(site, client_for, privacy_client_for, offer_with_cue):
    # Given one visitor's traffic on six threads and an eraser on a seventh
    stop = threading.Event()
    steps = {
        "start": start_step,
        "decide": decide_step,
        "events": events_step,
        "stage": stage_step,
        "convert": convert_step,
        "identify": identify_step,
    }
    traffic = [Traffic(name, client_for(site), step, stop) for name, step in steps.items()]
    eraser = Traffic("erase", privacy_client_for(site), erase_step, stop)

    # When they all run for a few seconds
    began = time.monotonic()
    for runner in [*traffic, eraser]:
        runner.thread.start()
    while time.monotonic() - began < MAX_SECONDS and (
        time.monotonic() - began < MIN_SECONDS or eraser.statuses["erased"] < ERASURES
    ):
        time.sleep(0.1)
    stop.set()
    for runner in [*traffic, eraser]:
        runner.thread.join(timeout=60)
        assert not runner.thread.is_alive(), runner.name

    # Then no request failed: every answer was a documented one, and every erasure completed
    errors = [error for runner in [*traffic, eraser] for error in runner.errors]
    assert errors == []
    assert eraser.statuses["erased"] >= ERASURES, eraser.statuses
    assert traffic[0].statuses["201"] >= ERASURES, traffic[0].statuses
    # the race was real: writes were refused because their visitor had just been erased
    refused = sum(runner.statuses["404"] + runner.statuses["event refused"] for runner in traffic)
    assert refused > 0, [runner.statuses for runner in traffic]

    # And after a last erasure nothing of the visitor remains anywhere
    last = privacy_client_for(site).delete(f"/api/v1/visitors/{VISITOR}")
    assert last.status_code in (204, 404)
    assert privacy_client_for(site).get(f"/api/v1/visitors/{VISITOR}").status_code == 404
    assert Visitor.objects.filter(visitor_id=VISITOR).count() == 0
    assert tables_containing(VISITOR) == []
    assert tables_containing("race-") == []
