"""The live monitor: the websocket consumer on the real Redis channel layer, the sequence
numbers, the snapshot endpoint, and what the services publish (on commit only).

Transactional tests: the consumer reads the session and the user through
``database_sync_to_async``, and the services publish from ``transaction.on_commit``.
Each scenario runs in one ``async_to_sync`` call, so the consumer's database calls run
on this thread, on the test's connection.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction
from django.test import Client
from django.utils import timezone

from analytics import monitor
from analytics.consumers import CLOSE_NOT_AUTHENTICATED, CLOSE_NOT_STAFF
from analytics.tasks import monitor_counters_task
from config.asgi import application
from journeys.models import JourneySession, StageTransition
from personalization.models import Allocation, ContentVariant, OptimizationProposal, Slot
from personalization.services.approvals import approval_decide, approval_submit, checklist_all_ticked
from personalization.services.optimizer import experiments_optimize, proposal_decide
from tests.journeys.helpers import move, start
from tests.personalization.optimizer_helpers import add_traffic, live_experiment
from tests.processes import database_url_of_the_test_database

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

ORIGIN = (b"origin", b"http://testserver")


def cookie_for(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()


def socket(cookie: bytes | None = None, *, origin=ORIGIN) -> WebsocketCommunicator:
    """A websocket client of the real ASGI stack; ``cookie`` from :func:`cookie_for` (made before the loop runs)."""
    headers = [origin, (b"host", b"testserver")]
    if cookie is not None:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, "/ws/monitor/", headers=headers)


async def subscribed(communicator: WebsocketCommunicator, site) -> dict:
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    await communicator.send_json_to({"action": "subscribe", "site": "all" if site == "all" else site.pk})
    return await communicator.receive_json_from(timeout=5)


async def receive(communicator: WebsocketCommunicator, count: int) -> list[dict]:
    """``count`` messages, in sequence order (one stream's sends may overtake each other)."""
    messages = [await communicator.receive_json_from(timeout=5) for _ in range(count)]
    return sorted(messages, key=lambda message: message["seq"])


def without_clock(message: dict) -> dict:
    """The message without what the publisher's clock decides."""
    assert isinstance(message.pop("published_at"), float)
    assert isinstance(message.pop("epoch"), str)
    return message


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("watcher", password="pw-watcher-123", is_staff=True)


def test_staff_is_accepted_and_subscribed_at_the_stream_head(site, staff):
    cookie = cookie_for(staff)

    async def scenario():
        communicator = socket(cookie)
        answer = await subscribed(communicator, site)
        await communicator.disconnect()
        return answer

    answer = async_to_sync(scenario)()

    epoch, seq = monitor.stream_head(f"site:{site.pk}")
    assert answer == {"type": "subscribed", "stream": f"site:{site.pk}", "epoch": epoch, "seq": 0}
    assert seq == 0


@pytest.mark.parametrize(("who", "code"), [("anonymous", CLOSE_NOT_AUTHENTICATED), ("member", CLOSE_NOT_STAFF)])
def test_anonymous_and_non_staff_are_closed_with_their_code_and_get_no_events(site, api, django_user_model, who, code):
    user = None if who == "anonymous" else django_user_model.objects.create_user("member", password="pw-member-12")
    cookie = None if user is None else cookie_for(user)

    async def scenario():
        communicator = socket(cookie)
        connected, _ = await communicator.connect(timeout=5)
        closed = await communicator.receive_output(timeout=5)
        await sync_to_async(start)(api, "s-1")
        await sync_to_async(monitor.monitor_flush)()
        rest = await communicator.receive_nothing(timeout=0.3)
        return connected, closed, rest

    connected, closed, nothing_more = async_to_sync(scenario)()

    assert connected is True
    assert closed == {"type": "websocket.close", "code": code}
    assert nothing_more is True


def test_a_foreign_origin_is_refused_at_the_handshake(site, staff):
    cookie = cookie_for(staff)

    async def scenario():
        communicator = socket(cookie, origin=(b"origin", b"https://evil.example"))
        return await communicator.connect(timeout=5)

    connected, _ = async_to_sync(scenario)()

    assert connected is False


def test_subscribing_to_an_unknown_site_is_an_error_and_the_socket_stays_open(site, staff):
    cookie = cookie_for(staff)

    async def scenario():
        communicator = socket(cookie)
        await communicator.connect(timeout=5)
        await communicator.send_json_to({"action": "subscribe", "site": site.pk + 1000})
        error = await communicator.receive_json_from(timeout=5)
        answer = await subscribed_again(communicator, site)
        await communicator.disconnect()
        return error, answer

    async def subscribed_again(communicator, site):
        await communicator.send_json_to({"action": "subscribe", "site": site.pk})
        return await communicator.receive_json_from(timeout=5)

    error, answer = async_to_sync(scenario)()

    assert error == {"type": "error", "code": "unknown_site", "detail": f"No site {site.pk + 1000}."}
    assert (answer["type"], answer["stream"]) == ("subscribed", f"site:{site.pk}")


def test_api_calls_stream_their_events_with_the_next_sequence_numbers(site, api, staff):
    cookie = cookie_for(staff)

    async def scenario():
        communicator = socket(cookie)
        subscription = await subscribed(communicator, site)
        await sync_to_async(start)(api, "s-1", device="mobile", source="tiktok")
        first = await receive(communicator, 1)
        await sync_to_async(move)(api, "s-1", "consideration", trigger_event="gallery")
        second = await receive(communicator, 1)
        body = {"event_id": str(uuid.uuid4()), "type": "purchase", "value": "49.90", "currency": "EUR"}
        body["product"] = {"sku": "A1"}
        await sync_to_async(api.post)("/api/v1/sessions/s-1/conversions", body, format="json")
        third = await receive(communicator, 2)
        await communicator.disconnect()
        return subscription, first + second + third

    subscription, messages = async_to_sync(scenario)()

    session = JourneySession.objects.get(site=site, session_id="s-1")
    considered, converted = StageTransition.objects.filter(session=session).exclude(from_stage="").order_by("id")
    conversion = session.conversions.get()
    stream = f"site:{site.pk}"
    assert subscription["seq"] == 0
    assert [without_clock(message) for message in messages] == [
        {
            "type": "event",
            "kind": "session_started",
            "id": f"session:{session.pk}",
            "site": site.pk,
            "at": session.started_at.isoformat(),
            "data": {
                "session_id": "s-1",
                "device_type": "mobile",
                "source": "tiktok",
                "journey_path": session.journey_path,
                "persona": session.persona_type,
                "returning": False,
            },
            "stream": stream,
            "seq": 1,
        },
        {
            "type": "event",
            "kind": "stage_changed",
            "id": f"transition:{considered.pk}",
            "site": site.pk,
            "at": considered.created_at.isoformat(),
            "data": {
                "session_id": "s-1",
                "from_stage": "awareness",
                "to_stage": "consideration",
                "trigger": "gallery",
                "conversion_probability": considered.conversion_probability,
            },
            "stream": stream,
            "seq": 2,
        },
        {
            "type": "event",
            "kind": "stage_changed",
            "id": f"transition:{converted.pk}",
            "site": site.pk,
            "at": converted.created_at.isoformat(),
            "data": {
                "session_id": "s-1",
                "from_stage": "consideration",
                "to_stage": "conversion",
                "trigger": "conversion:purchase",
                "conversion_probability": converted.conversion_probability,
            },
            "stream": stream,
            "seq": 3,
        },
        {
            "type": "event",
            "kind": "conversion",
            "id": f"conversion:{conversion.pk}",
            "site": site.pk,
            "at": conversion.converted_at.isoformat(),
            "data": {"session_id": "s-1", "type": "purchase", "value": "49.90", "currency": "EUR", "sku": "A1"},
            "stream": stream,
            "seq": 4,
        },
    ]
    assert monitor.stream_head(stream)[1] == 4


def test_the_all_stream_carries_every_site_with_its_own_numbers(site, other_site, client_for, staff):
    cookie = cookie_for(staff)

    async def scenario():
        communicator = socket(cookie)
        await subscribed(communicator, "all")
        await sync_to_async(start)(client_for(site), "s-a")
        await sync_to_async(start)(client_for(other_site), "s-b")
        messages = await receive(communicator, 2)
        await communicator.disconnect()
        return messages

    messages = async_to_sync(scenario)()

    assert [(m["stream"], m["seq"], m["site"], m["data"]["session_id"]) for m in messages] == [
        ("all", 1, site.pk, "s-a"),
        ("all", 2, other_site.pk, "s-b"),
    ]
    assert monitor.stream_head(f"site:{site.pk}")[1] == 1
    assert monitor.stream_head(f"site:{other_site.pk}")[1] == 1


PUBLISHER_SCRIPT = """
import sys, time
import django
django.setup()
from django.utils import timezone
from analytics.monitor import FeedEvent, monitor_flush, monitor_publish
site_id, count = int(sys.argv[1]), int(sys.argv[2])
print("ready", flush=True)
for index in range(count):
    monitor_publish(FeedEvent("session_started", f"other-process:{index}", site_id, timezone.now(), {"n": index}))
    time.sleep(0.01)
assert monitor_flush(10)
"""


def test_sequence_numbers_are_monotonic_and_unique_across_processes(site, staff):
    count = 40
    database_url = database_url_of_the_test_database()

    def publish_here():
        for index in range(count):
            monitor.monitor_publish(monitor.FeedEvent("session_started", f"here:{index}", site.pk, timezone.now(), {}))
            time.sleep(0.01)

    cookie = cookie_for(staff)

    async def scenario():
        communicator = socket(cookie)
        await subscribed(communicator, site)
        other = subprocess.Popen(
            [sys.executable, "-c", PUBLISHER_SCRIPT, str(site.pk), str(count)],
            cwd=settings.BASE_DIR,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DATABASE_URL": database_url},
            stdout=subprocess.PIPE,
            text=True,
        )
        assert (await sync_to_async(other.stdout.readline, thread_sensitive=False)()).strip() == "ready"
        await sync_to_async(publish_here)()
        assert await sync_to_async(other.wait, thread_sensitive=False)(timeout=60) == 0
        received = [await communicator.receive_json_from(timeout=5) for _ in range(2 * count)]
        nothing_more = await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()
        return received, nothing_more

    received, nothing_more = async_to_sync(scenario)()

    by_seq = {message["seq"]: message["id"] for message in received}
    assert sorted(by_seq) == list(range(1, 2 * count + 1))
    assert set(by_seq.values()) == {f"here:{i}" for i in range(count)} | {f"other-process:{i}" for i in range(count)}
    # Each process numbers its own events in the order it published them.
    for prefix in ("here", "other-process"):
        mine = [int(ident.split(":")[1]) for seq, ident in sorted(by_seq.items()) if ident.startswith(prefix)]
        assert mine == list(range(count))
    assert nothing_more is True


def test_a_rolled_back_transaction_streams_nothing_and_leaves_no_hole(site, api, staff):
    class Undo(Exception):
        pass

    def rolled_back():
        with pytest.raises(Undo), transaction.atomic():
            assert start(api, "s-undone").status_code == 201
            raise Undo

    cookie = cookie_for(staff)

    async def scenario():
        communicator = socket(cookie)
        await subscribed(communicator, site)
        await sync_to_async(rolled_back)()
        await sync_to_async(monitor.monitor_flush)()
        nothing = await communicator.receive_nothing(timeout=0.5)
        await sync_to_async(start)(api, "s-kept")
        after = await receive(communicator, 1)
        await communicator.disconnect()
        return nothing, after

    nothing, [after] = async_to_sync(scenario)()

    assert nothing is True
    assert not JourneySession.objects.filter(session_id="s-undone").exists()
    assert (after["seq"], after["data"]["session_id"]) == (1, "s-kept")


def staff_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_snapshot_has_the_head_the_counters_and_the_latest_events(site, other_site, api, client_for, staff):
    cookie = cookie_for(staff)

    async def scenario():
        communicator = socket(cookie)
        await subscribed(communicator, site)
        await sync_to_async(start)(api, "s-1")
        await sync_to_async(move)(api, "s-1", "consideration")
        body = {"event_id": str(uuid.uuid4()), "type": "purchase", "value": "49.90", "currency": "EUR"}
        await sync_to_async(api.post)("/api/v1/sessions/s-1/conversions", body, format="json")
        await sync_to_async(start)(client_for(other_site), "s-elsewhere")
        messages = await receive(communicator, 4)
        await communicator.disconnect()
        return messages

    messages = async_to_sync(scenario)()
    response = staff_client(staff).get(f"/dashboards/monitor/snapshot?site={site.pk}")

    assert response.status_code == 200
    snapshot = response.json()
    session = JourneySession.objects.get(site=site, session_id="s-1")
    considered, converted = StageTransition.objects.filter(session=session).exclude(from_stage="").order_by("id")
    conversion = session.conversions.get()
    assert (snapshot["stream"], snapshot["site"], snapshot["epoch"], snapshot["seq"]) == (
        f"site:{site.pk}",
        site.pk,
        messages[-1]["epoch"],
        4,
    )
    counts = {"sessions_started": 1, "stage_changes": 2, "conversions": 1, "revenue": "49.90", "cues_shown": 0}
    assert snapshot["counters"]["recent"] == counts
    assert snapshot["counters"]["today"] == counts
    assert snapshot["counters"]["recent_minutes"] == monitor.RECENT_MINUTES
    # The feed's events and the snapshot's are the same objects, newest first.
    live = {message["id"]: {k: message[k] for k in ("kind", "id", "site", "at", "data")} for message in messages}
    assert [event["id"] for event in snapshot["events"]] == [
        f"transition:{converted.pk}",
        f"conversion:{conversion.pk}",
        f"transition:{considered.pk}",
        f"session:{session.pk}",
    ]
    assert snapshot["events"] == [live[event["id"]] for event in snapshot["events"]]


def test_snapshot_of_all_sites_sums_the_counters(site, other_site, client_for, staff):
    start(client_for(site), "s-a")
    start(client_for(other_site), "s-b")
    assert monitor.monitor_flush(10)  # the publisher thread has numbered both events

    snapshot = staff_client(staff).get("/dashboards/monitor/snapshot?site=all").json()

    assert (snapshot["stream"], snapshot["site"], snapshot["seq"]) == ("all", None, 2)
    assert snapshot["counters"]["today"]["sessions_started"] == 2
    assert [event["data"]["session_id"] for event in snapshot["events"]] == ["s-b", "s-a"]


def test_snapshot_refuses_anonymous_and_non_staff_and_bad_sites(site, django_user_model, staff):
    member = django_user_model.objects.create_user("member", password="pw-member-12")
    url = "/dashboards/monitor/snapshot"

    assert Client().get(f"{url}?site={site.pk}").status_code == 403
    assert staff_client(member).get(f"{url}?site={site.pk}").json() == {"detail": "Staff only.", "code": "not_staff"}
    assert staff_client(staff).get(url).json() == {"site": ['Name a site id or "all".']}
    missing = staff_client(staff).get(f"{url}?site={site.pk + 1000}")
    assert (missing.status_code, missing.json()["code"]) == (404, "unknown_site")


def test_monitor_page_is_for_staff_only(site, django_user_model, staff):
    member = django_user_model.objects.create_user("member", password="pw-member-12")

    page = staff_client(staff).get("/dashboards/monitor/")
    anonymous = Client().get("/dashboards/monitor/")
    refused = staff_client(member).get("/dashboards/monitor/")

    assert page.status_code == 200
    assert b'id="monitor-config"' in page.content
    assert b"analytics/monitor.js" in page.content
    assert (anonymous.status_code, anonymous["Location"]) == (302, "/admin/login/?next=/dashboards/monitor/")
    assert refused.status_code == 403


def test_counters_task_sends_counters_with_the_stream_head_and_no_number(site, api, staff):
    cookie = cookie_for(staff)

    async def scenario():
        communicator = socket(cookie)
        await subscribed(communicator, site)
        await sync_to_async(start)(api, "s-1")
        event = await communicator.receive_json_from(timeout=5)
        await sync_to_async(monitor_counters_task.delay)()
        counters = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return event, counters

    event, counters = async_to_sync(scenario)()

    assert (counters["type"], counters["stream"], counters["site"], counters["seq"]) == (
        "counters",
        f"site:{site.pk}",
        site.pk,
        event["seq"],
    )
    assert counters["epoch"] == event["epoch"]
    counts = {"sessions_started": 1, "stage_changes": 0, "conversions": 0, "revenue": "0.00", "cues_shown": 0}
    assert counters["data"]["recent"] == counts
    assert counters["data"]["today"] == counts
    assert monitor.stream_head(f"site:{site.pk}")[1] == 1


def test_approval_decisions_stream(site, staff, django_user_model):
    marketer = django_user_model.objects.create_user("mia", password="pw-mia-12345", is_staff=True)
    marketer.groups.add(Group.objects.get(name="Marketers"))
    approver = django_user_model.objects.create_user("ada", password="pw-ada-12345", is_staff=True)
    approver.groups.add(Group.objects.get(name="Approvers"))
    slot = Slot.objects.create(site=site, key="hero", name="Hero")
    variant = ContentVariant.objects.create(
        site=site, slot=slot, key="hero-b", name="Hero B", payload={"headline": "Fast"}, created_by=marketer
    )
    request = approval_submit(obj=variant, requester=marketer)
    checklist = checklist_all_ticked(request)

    cookie = cookie_for(staff)

    async def scenario():
        communicator = socket(cookie)
        await subscribed(communicator, site)
        await sync_to_async(approval_decide)(request=request, decider=approver, approve=True, checklist=checklist)
        [message] = await receive(communicator, 1)
        await communicator.disconnect()
        return message

    message = async_to_sync(scenario)()

    request.refresh_from_db()
    assert without_clock(message) == {
        "type": "event",
        "kind": "approval_decided",
        "id": f"approval:{request.pk}",
        "site": site.pk,
        "at": request.decided_at.isoformat(),
        "data": {
            "object_type": "contentvariant",
            "object": str(variant),
            "version": 1,
            "status": "approved",
            "by": "ada",
        },
        "stream": f"site:{site.pk}",
        "seq": 1,
    }


def test_optimizer_actions_stream(site, staff, django_user_model):
    approver = django_user_model.objects.create_user("ada", password="pw-ada-12345", is_staff=True)
    approver.groups.add(Group.objects.get(name="Approvers"))
    large = live_experiment(site, key="large", allocation=Allocation.BANDIT, minimum_sample=5000)
    add_traffic(large, "a", exposures=1000, conversions=100)
    add_traffic(large, "b", exposures=1000, conversions=140)
    small = live_experiment(site, key="small", allocation=Allocation.BANDIT, minimum_sample=5000)
    add_traffic(small, "a", exposures=1000, conversions=100)
    add_traffic(small, "b", exposures=1000, conversions=103)

    cookie = cookie_for(staff)

    async def scenario():
        communicator = socket(cookie)
        await subscribed(communicator, site)
        created = await sync_to_async(experiments_optimize)(site_id=site.pk)
        first = await receive(communicator, 2)
        pending = next(p for p in created if p.status == "pending")
        await sync_to_async(proposal_decide)(proposal=pending, decider=approver, approve=False, comment="no")
        second = await receive(communicator, 1)
        await communicator.disconnect()
        return first + second

    messages = async_to_sync(scenario)()

    proposed = OptimizationProposal.objects.get(experiment=large)
    applied = OptimizationProposal.objects.get(experiment=small)
    assert [(m["seq"], m["kind"], m["id"]) for m in messages] == [
        (1, "proposal_created", f"proposal:{proposed.pk}:created"),
        (2, "optimizer_reweight_applied", f"proposal:{applied.pk}:created"),
        (3, "proposal_decided", f"proposal:{proposed.pk}:decided"),
    ]
    assert messages[1]["data"] == {
        "experiment": "small",
        "proposal": applied.pk,
        "weights": applied.proposed["weights"],
    }
    assert messages[2]["data"] == {
        "experiment": "large",
        "proposal": proposed.pk,
        "proposal_kind": "reweight",
        "status": "rejected",
        "by": "ada",
    }


def test_counters_of_a_quiet_site_are_zero(site):
    now = timezone.now()

    counters = monitor.counters_for([site.pk], now=now)[site.pk]

    zero = {"sessions_started": 0, "stage_changes": 0, "conversions": 0, "revenue": "0.00", "cues_shown": 0}
    assert counters == {
        "recent_minutes": monitor.RECENT_MINUTES,
        "since": monitor.day_start(now).isoformat(),
        "recent": zero,
        "today": zero,
    }
