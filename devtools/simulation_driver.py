"""The simulator's HTTP driver: sends the planned visitors (:mod:`devtools.simulation`)
through the real API, checks every answer and counts what the server said. Any answer
other than the documented 2xx, or any event the server rejects, raises :class:`ApiError`.
Used by ``manage.py simulate`` and the conversion-model benchmark.
"""

from __future__ import annotations

import ipaddress
import time
from collections import Counter
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import httpx

from devtools.simulation import (
    EXPECTED_CONVERSION_RATE,
    STAGES,
    SessionPlan,
    VisitorPlan,
    variant_purchase,
)

BATCH_SIZE = 500  # events per POST /events; the API accepts up to 1,000


class ApiError(Exception):
    """The API answered something other than what the contract promises."""


@dataclass
class SessionOutcome:
    """What the server answered for one planned session."""

    session_id: str
    created: bool
    journey_path: str
    stage_updates: int = 0
    events_sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    conflicts: int = 0
    conversions: Counter = field(default_factory=Counter)
    conversion_duplicates: int = 0
    identified: bool = False
    variant: str | None = None
    variant_purchased: bool = False


@dataclass
class Report:
    visitors: int
    seed: int
    anchor: datetime
    outcomes: list[SessionOutcome]
    plans: list[SessionPlan]
    seconds: float

    def summary_lines(self) -> list[str]:
        outcomes = self.outcomes
        created = sum(o.created for o in outcomes)
        purchases = sum(o.conversions["purchase"] for o in outcomes)
        signups = sum(o.conversions["email_signup"] for o in outcomes)
        planned_purchases = sum(p.truth.purchased for p in self.plans)
        revenue = sum((Decimal(p.truth.purchase_value) for p in self.plans if p.truth.purchase_value), Decimal(0))
        sessions = len(outcomes)
        mean_truth = sum(p.truth.true_probability for p in self.plans) / sessions if sessions else 0.0
        observed = planned_purchases / sessions if sessions else 0.0
        second_devices = sum(p.truth.second_device for p in self.plans)
        paths = Counter(o.journey_path for o in outcomes)
        reached = Counter(p.truth.reached_stage for p in self.plans)
        requests = sum(
            1 + o.stage_updates + -(-o.events_sent // BATCH_SIZE) + sum(o.conversions.values()) + o.identified
            for o in outcomes
        )
        return [
            f"seed: {self.seed}, visitors: {self.visitors} (+{second_devices} second-device visitors), "
            f"client time anchor: {self.anchor.isoformat()}",
            f"sessions: {sessions} ({created} new, {sessions - created} existing)",
            f"stage updates: {sum(o.stage_updates for o in outcomes)}",
            f"events: {sum(o.events_sent for o in outcomes)} sent, {sum(o.accepted for o in outcomes)} accepted, "
            f"{sum(o.duplicates for o in outcomes)} duplicates, {sum(o.conflicts for o in outcomes)} conflicts",
            f"conversions: {planned_purchases} purchases ({purchases} new), revenue {revenue:.2f} EUR; "
            f"{sum(p.truth.email_signup for p in self.plans)} email signups ({signups} new); "
            f"{sum(o.conversion_duplicates for o in outcomes)} duplicates",
            f"cross-device identifies: {sum(o.identified for o in outcomes)}",
            f"purchase rate: observed {observed:.3f} ({planned_purchases}/{sessions}), "
            f"mean true probability {mean_truth:.3f}, population expectation {EXPECTED_CONVERSION_RATE:.3f}",
            "paths: " + ", ".join(f"{path} {count}" for path, count in sorted(paths.items())),
            "furthest stage: " + ", ".join(f"{stage} {reached[stage]}" for stage in STAGES),
            f"took {self.seconds:.1f} s ({requests} requests, {requests / max(self.seconds, 1e-9):.0f}/s)",
        ]


RATE_LIMITED_RETRIES = 20


def _post(client: httpx.Client, path: str, body: dict, *, expect: tuple[int, ...]) -> dict:
    response = client.post(path, json=body)
    # Visitors may share one address (visitor_address): over its rate limit, wait as told
    # and resend the identical request (every call is idempotent or a read).
    for _ in range(RATE_LIMITED_RETRIES):
        if response.status_code != 429:
            break
        time.sleep(float(response.headers.get("Retry-After", "1")))
        response = client.post(path, json=body)
    if response.status_code not in expect:
        raise ApiError(f"POST {path} answered {response.status_code}: {response.text[:500]}")
    try:
        return response.json()
    except ValueError as error:
        raise ApiError(f"POST {path} answered {response.status_code} with a body that is not JSON") from error


def _shown_variant(started: dict, variant_rates: dict[str, float]) -> str | None:
    slots = (started.get("decision") or {}).get("slots") or {}
    for slot in sorted(slots):
        if slots[slot] and slots[slot]["variant"] in variant_rates:
            return slots[slot]["variant"]
    return None


def drive_session(
    client: httpx.Client, plan: SessionPlan, variant_rates: dict[str, float] | None = None
) -> SessionOutcome:
    """Send one planned session.

    With ``variant_rates`` (experiment mode), a session shown one of those variants by
    its first decision buys at that variant's true rate instead of the planned model
    (:func:`devtools.simulation.variant_purchase`).

    Session start, events and conversions are idempotent on their client ids, so a
    replayed session resends them (and the server counts duplicates). Stage updates
    are not: each one is a recorded transition. A session that existed already
    therefore gets no stage updates.
    """
    started = _post(client, "/api/v1/sessions", plan.start, expect=(200, 201))
    if started.get("conflict"):
        raise ApiError(f"session {plan.session_id} exists with a different start payload")
    outcome = SessionOutcome(
        session_id=plan.session_id,
        created=started["created"],
        journey_path=started["journey_state"]["journey_path"],
    )
    replace_purchase = None
    if variant_rates:
        outcome.variant = _shown_variant(started, variant_rates)
        if outcome.variant is not None:
            outcome.variant_purchased, replace_purchase = variant_purchase(
                plan, variant_rate=variant_rates[outcome.variant]
            )
    if plan.identify is not None:
        _post(client, "/api/v1/identify", plan.identify, expect=(200,))
        outcome.identified = True
    for stage in plan.stages:
        if stage.update is not None and outcome.created:
            answer = _post(client, f"/api/v1/sessions/{plan.session_id}/stage", stage.update, expect=(200,))
            if answer["journey_state"]["current_stage"] != stage.stage:
                raise ApiError(f"session {plan.session_id} is in {answer['journey_state']['current_stage']!r}")
            outcome.stage_updates += 1
        for start in range(0, len(stage.events), BATCH_SIZE):
            batch = stage.events[start : start + BATCH_SIZE]
            answer = _post(client, "/api/v1/events", {"events": batch}, expect=(200,))
            if answer["rejected"]:
                raise ApiError(f"events of session {plan.session_id} rejected: {answer['rejected']}")
            outcome.events_sent += len(batch)
            outcome.accepted += answer["accepted"]
            outcome.duplicates += answer["duplicates"]
            outcome.conflicts += answer["conflicts"]
        conversions = stage.conversions
        if replace_purchase is not None:
            conversions = [c for c in conversions if c["type"] != "purchase"]
            if outcome.variant_purchased and stage is plan.stages[-1]:
                conversions.append(replace_purchase)
        for conversion in conversions:
            _send_conversion(client, plan.session_id, conversion, outcome)
    return outcome


def _send_conversion(client: httpx.Client, session_id: str, conversion: dict, outcome: SessionOutcome) -> None:
    answer = _post(client, f"/api/v1/sessions/{session_id}/conversions", conversion, expect=(200, 201))
    if answer.get("conflict"):
        raise ApiError(f"conversion {conversion['event_id']} exists with a different payload")
    if answer["duplicate"]:
        outcome.conversion_duplicates += 1
    else:
        outcome.conversions[conversion["type"]] += 1


# Each simulated visitor calls from an address of its own, in the benchmarking range
# 198.18.0.0/15, sent as X-Forwarded-For: an engine with RATE_LIMIT_TRUSTED_PROXIES=1 counts
# them as the people they are (social proof, rate limits); any other sees one address.
FIRST_ADDRESS = ipaddress.ip_address("198.18.0.1")


def visitor_address(index: int) -> str:
    return str(FIRST_ADDRESS + index % 131_000)


class _AsVisitor:
    """The shared client, its requests sent as one visitor (from its address)."""

    def __init__(self, client: httpx.Client, address: str) -> None:
        self.client = client
        self.headers = {"X-Forwarded-For": address}

    def post(self, path: str, json: dict) -> httpx.Response:
        return self.client.post(path, json=json, headers=self.headers)


def drive_visitor(
    client: httpx.Client, visitor: VisitorPlan, variant_rates: dict[str, float] | None = None
) -> list[SessionOutcome]:
    """A visitor's sessions in order: later sessions depend on earlier ones (returning, persona)."""
    as_visitor = _AsVisitor(client, visitor_address(visitor.index))
    return [drive_session(as_visitor, session, variant_rates) for session in visitor.sessions]


def simulate(
    *,
    base_url: str,
    site_key: str,
    visitors: list[VisitorPlan],
    concurrency: int,
    timeout: float = 30.0,
    variant_rates: dict[str, float] | None = None,
) -> list[SessionOutcome]:
    """Drive all visitors, ``concurrency`` at a time; the first failure cancels the rest."""
    transport = httpx.HTTPTransport(retries=2)  # connection failures only: nothing was sent
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"X-Site-Key": site_key}
    outcomes: dict[int, list[SessionOutcome]] = {}
    with (
        httpx.Client(base_url=base_url, headers=headers, timeout=timeout, transport=transport, limits=limits) as client,
        ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="simulate") as pool,
    ):
        futures = {pool.submit(drive_visitor, client, visitor, variant_rates): visitor.index for visitor in visitors}
        try:
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for future in done:
                if future.exception() is not None:
                    raise future.exception()
                outcomes[futures[future]] = future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    return [outcome for index in sorted(outcomes) for outcome in outcomes[index]]
