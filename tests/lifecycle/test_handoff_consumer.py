"""Accepted handoffs and health changes arrive over the real broker."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from services.lifecycle.models import Account, Task, TimelineEntry, infra
from shared.events.registry import HANDOFF_TOPIC, LIFECYCLE_TOPIC, METRICS_TOPIC
from shared.testing import eventually, make_event
from tests.lifecycle.conftest import accepted_event, count_rows, handoff_payload, outbox_events


async def test_accepted_handoff_creates_one_account_with_its_plan_and_health_shows(service, kafka) -> None:
    payload = handoff_payload("acme-corp", commitments=3)
    first = accepted_event(payload)
    replay_under_new_id = accepted_event(payload)
    async with service("lifecycle", run_scheduler=False) as svc:
        # The same event twice (redelivery) and the same fact under another event id.
        await kafka.publish(HANDOFF_TOPIC, [first, first, replay_under_new_id])
        consumer = svc.ctx.consumers[0]
        # The consumer also reads lifecycle's own topic, so its counters include more than these.
        await eventually(lambda: _async(consumer.stats["applied"] + consumer.stats["duplicates"] >= 3),
                         timeout=30, message="handoff events consumed")
        await eventually(lambda: _processed(svc, first, replay_under_new_id), timeout=30,
                         message="both handoff events applied")

        assert await count_rows(svc, Account) == 1
        r = await svc.client.get("/v1/accounts/acme-corp")
        assert r.status_code == 200, r.text
        acc = r.json()
        assert acc["stage"] == "onboarding"
        assert acc["owner"] == "csm.jane@vendor.example"
        assert (acc["seats"], acc["arr"], acc["currency"], acc["segment"]) == (250, "120000.50", "EUR", "enterprise")
        assert (acc["contract_start"], acc["renewal_date"]) == ("2026-01-05", "2027-01-05")
        assert acc["handoff_id"] == payload.handoff_id
        assert acc["onboarding"]["planned_go_live"] == "2026-04-05"  # contract_start + 90 days
        assert acc["onboarding"]["tasks_total"] == 5 + 3 and acc["onboarding"]["progress"] == 0

        r = await svc.client.get("/v1/accounts/acme-corp/tasks", params={"kind": "commitment"})
        tasks = r.json()["items"]
        assert sorted(t["commitment_id"] for t in tasks) == sorted(c.id for c in payload.commitments)
        assert {t["handoff_id"] for t in tasks} == {payload.handoff_id}
        by_commitment = {t["commitment_id"]: t for t in tasks}
        c0 = payload.commitments[0]
        assert by_commitment[c0.id]["owner"] == "tam.li@vendor.example"
        assert by_commitment[payload.commitments[1].id]["owner"] == "csm.jane@vendor.example"
        assert by_commitment[c0.id]["due_date"] == c0.due_date.isoformat()
        assert await count_rows(svc, Task) == 5 + 3
        assert len(await outbox_events(svc, "postsales.account.created")) == 1
        assert await count_rows(svc, TimelineEntry, TimelineEntry.type == "postsales.handoff.accepted") == 1

        # Completing the commitment's task announces it once, with the commitment id, on the real topic.
        task_id = by_commitment[c0.id]["id"]
        r = await svc.client.patch(f"/v1/accounts/acme-corp/tasks/{task_id}", json={"status": "done"})
        assert r.status_code == 200 and r.json()["status"] == "done", r.text
        r = await svc.client.patch(f"/v1/accounts/acme-corp/tasks/{task_id}", json={"status": "done"})
        assert r.status_code == 200, r.text

        async def completed_on_bus() -> list:
            evs = [e for e in await kafka.events(LIFECYCLE_TOPIC, settle=0.3)
                   if e.type == "postsales.task.completed"]
            return evs

        events = await eventually(completed_on_bus, message="task.completed on the bus")
        assert len(events) == 1
        ev = events[0]
        assert ev.subject == "acme-corp" and ev.source == "/services/lifecycle"
        assert ev.data["commitment_id"] == c0.id and ev.data["handoff_id"] == payload.handoff_id
        assert ev.data["task_id"] == task_id and ev.data["account_id"] == "acme-corp"
        assert len(await outbox_events(svc, "postsales.task.completed")) == 1

        # Health from metrics: the newest by event time wins, a late older one does not.
        t_new = dt.datetime(2026, 3, 2, 6, 0, tzinfo=dt.UTC)
        newer = make_event("postsales.health.changed", "acme-corp", {
            "account_id": "acme-corp", "old_score": 55, "new_score": 35.5, "old_band": "yellow", "new_band": "red",
            "factors": [{"name": "usage", "value": 20, "contribution": -15}]}, source="/services/metrics", time=t_new)
        older = make_event("postsales.health.changed", "acme-corp", {
            "account_id": "acme-corp", "old_score": 40, "new_score": 80, "old_band": "yellow", "new_band": "green"},
            source="/services/metrics", time=t_new - dt.timedelta(days=3))
        # A score-only update (the band stays red) refreshes the copy without a timeline entry.
        same_band = make_event("postsales.health.changed", "acme-corp", {
            "account_id": "acme-corp", "old_score": 35.5, "new_score": 29.5, "old_band": "red", "new_band": "red"},
            source="/services/metrics", time=t_new + dt.timedelta(hours=1))
        await kafka.publish(METRICS_TOPIC, [newer, older, same_band])
        await eventually(lambda: _processed(svc, newer, older, same_band), timeout=20, message="health consumed")
        acc = (await svc.client.get("/v1/accounts/acme-corp")).json()
        assert acc["health"]["band"] == "red" and acc["health"]["score"] == 29.5
        red = (await svc.client.get("/v1/accounts", params={"health_band": "red"})).json()["items"]
        green = (await svc.client.get("/v1/accounts", params={"health_band": "green"})).json()["items"]
        assert [a["id"] for a in red] == ["acme-corp"] and green == []

        # The timeline holds everything, newest first (health by its event time).
        items = (await svc.client.get("/v1/accounts/acme-corp/timeline")).json()["items"]
        types = [i["type"] for i in items]
        assert types.count("postsales.health.changed") == 2
        assert types.count("postsales.handoff.accepted") == 1 and "postsales.task.completed" in types
        times = [i["occurred_at"] for i in items]
        assert [dt.datetime.fromisoformat(t) for t in times] == sorted(
            (dt.datetime.fromisoformat(t) for t in times), reverse=True)


async def _async(value: bool) -> bool:
    return value


async def _processed(svc, *events) -> bool:
    t = infra.processed_events
    async with svc.ctx.session_factory() as s:
        seen = {(r.source, r.event_id) for r in (await s.execute(select(t.c.source, t.c.event_id))).all()}
    return all((e.source, e.id) in seen for e in events)


async def test_handoff_onto_existing_account_early_health_and_poison(service, kafka) -> None:
    async with service("lifecycle", run_scheduler=False) as svc:
        c = svc.client
        # An account made by hand before its handoff: the handoff fills gaps but keeps what people set.
        r = await c.post("/v1/accounts", json={"id": "manual-co", "name": "Manual Co", "stage": "adoption",
                                               "owner": "csm.max@vendor.example"})
        assert r.status_code == 201, r.text
        linked = handoff_payload("manual-co", commitments=2)
        # Health may arrive before the account exists.
        early_health = make_event("postsales.health.changed", "late-co", {
            "account_id": "late-co", "new_score": 82, "new_band": "green"}, source="/services/metrics")
        late = handoff_payload("late-co", commitments=0)
        bad = handoff_payload("bad/id", commitments=1)
        await kafka.publish(METRICS_TOPIC, [early_health])
        await kafka.publish(HANDOFF_TOPIC, [accepted_event(linked), accepted_event(bad), accepted_event(late)])

        async def both_there() -> bool:
            return (await c.get("/v1/accounts/late-co")).status_code == 200 and len(
                (await c.get("/v1/accounts/manual-co/tasks", params={"kind": "commitment"})).json()["items"]) == 2

        await eventually(both_there, timeout=30, message="handoffs applied")
        acc = (await c.get("/v1/accounts/manual-co")).json()
        assert (acc["stage"], acc["owner"], acc["name"]) == ("adoption", "csm.max@vendor.example", "Manual Co")
        assert (acc["arr"], acc["renewal_date"], acc["handoff_id"]) == ("120000.50", "2027-01-05", linked.handoff_id)
        assert acc["onboarding"]["tasks_total"] == 2  # only the commitments: it is past onboarding
        assert [e["subject"] for e in await outbox_events(svc, "postsales.account.created")] == ["manual-co", "late-co"]
        updated = await outbox_events(svc, "postsales.account.updated")
        assert [e["subject"] for e in updated] == ["manual-co"] and "owner" not in updated[0]["data"]["changed"]

        late_acc = (await c.get("/v1/accounts/late-co")).json()
        assert late_acc["health"]["band"] == "green" and late_acc["onboarding"]["tasks_total"] == 5

        # The unusable one went to the dead-letter topic; nothing was created for it.
        async def dead_lettered() -> bool:
            return any(r.key == b"bad/id" for r in await kafka.read_all(HANDOFF_TOPIC + ".dlq", settle=0.2))

        await eventually(dead_lettered, message="bad handoff dead-lettered")
        assert await count_rows(svc, Account) == 2
