from __future__ import annotations

import asyncio
import json

from sqlalchemy import select

from services.handoff.commitments.service import scan_overdue
from services.handoff.models import Commitment, CommitmentChange, infra
from shared.events.registry import HANDOFF_TOPIC, LIFECYCLE_TOPIC, CommitmentUpdated
from shared.testing import RunningService, eventually, make_event
from tests.handoff.conftest import accepted, assert_problem, complete_body, create, outbox_types, past, snapshot


async def commitment_events(svc: RunningService) -> list[dict]:
    async with svc.ctx.session_factory() as s:
        rows = (await s.execute(select(infra.outbox.c.payload).order_by(infra.outbox.c.id))).scalars().all()
    docs = [json.loads(p) for p in rows]
    return [d for d in docs if d["type"] == "postsales.commitment.updated"]


async def test_commitment_ledger_changes_history_and_events(service) -> None:
    async with service("handoff", run_consumers=False, run_relay=False) as svc:
        h = await accepted(svc)
        sso, training = h["commitments"]
        url = f"/v1/handoffs/{h['id']}/commitments/{sso['id']}"
        r = await svc.client.patch(url, json={"status": "in_progress", "note": "kicked off", "by": "tam"})
        assert r.status_code == 200, r.text
        r = await svc.client.patch(url, json={"status": "delivered", "evidence": "https://tickets/OPS-42"})
        detail = r.json()
        assert detail["status"] == "delivered" and detail["delivered_at"] and detail["evidence"].endswith("OPS-42")
        assert [(x["from_status"], x["to_status"], x["cause"]) for x in detail["history"]] == [
            ("open", "in_progress", "api"), ("in_progress", "delivered", "api")]
        assert detail["history"][0]["note"] == "kicked off" and detail["history"][0]["actor"] == "tam"
        # A no-op PATCH changes nothing and emits nothing.
        before = await snapshot(svc)
        r = await svc.client.patch(url, json={"status": "delivered"})
        assert r.status_code == 200 and await snapshot(svc) == before

        # Waiving needs a reason; a refused PATCH writes nothing.
        turl = f"/v1/handoffs/{h['id']}/commitments/{training['id']}"
        assert_problem(await svc.client.patch(turl, json={"status": "waived"}), 422, "note")
        assert_problem(await svc.client.patch(turl, json={"status": "done"}), 422)
        assert_problem(await svc.client.patch(turl, json={"status": None}), 422)
        assert await snapshot(svc) == before
        r = await svc.client.patch(turl, json={"status": "waived", "note": "customer trains in-house"})
        assert r.json()["status"] == "waived"

        events = await commitment_events(svc)
        assert [(e["data"]["commitment_id"], e["data"]["previous_status"], e["data"]["status"]) for e in events] == [
            (sso["id"], "open", "in_progress"), (sso["id"], "in_progress", "delivered"),
            (training["id"], "open", "waived")]
        for e in events:
            CommitmentUpdated.model_validate(e["data"])
            assert e["subject"] == h["account"]["external_id"] and e["data"]["handoff_id"] == h["id"]
            assert e["data"]["account_id"] == h["account"]["external_id"]
        assert events[1]["data"]["delivered_at"] is not None

        r = await svc.client.get(f"/v1/handoffs/{h['id']}/commitments")
        assert [(c["id"], c["status"]) for c in r.json()["items"]] == [(sso["id"], "delivered"),
                                                                        (training["id"], "waived")]


async def test_commitments_across_handoffs_with_filters(service) -> None:
    async with service("handoff", run_consumers=False, run_relay=False, overdue_check_interval=3600) as svc:
        late = complete_body()
        late["commitments"][0].update(due_date=past(3), owner="tam.late@example.com")
        a = await accepted(svc, late)
        b = await create(svc)

        async def ids(query: str) -> list[str]:
            r = await svc.client.get(f"/v1/commitments?{query}")
            assert r.status_code == 200, r.text
            return [x["id"] for x in r.json()["items"]]

        overdue = await ids("overdue=true")
        assert overdue == [a["commitments"][0]["id"]]
        r = await svc.client.get("/v1/commitments?overdue=true")
        assert r.json()["items"][0]["overdue"] is True
        assert await ids("owner=tam.late@example.com") == overdue
        assert len(await ids("overdue=false")) == 3
        assert set(await ids(f"account_id={b['account']['external_id']}")) == {c["id"] for c in b["commitments"]}
        assert len(await ids("handoff_status=accepted")) == 2
        all_ids = await ids("limit=500")
        assert len(all_ids) == 4
        paged, cursor = [], None
        while True:
            r = await svc.client.get("/v1/commitments", params={"limit": 1, **({"cursor": cursor} if cursor else {})})
            paged += [x["id"] for x in r.json()["items"]]
            if (cursor := r.json()["next_cursor"]) is None:
                break
        assert paged == all_ids
        assert_problem(await svc.client.get("/v1/commitments?status=nope"), 422)


async def test_overdue_scan_flags_once_across_passes_and_replicas(service, kafka) -> None:
    async with service("handoff", run_consumers=False, overdue_check_interval=3600) as one:
        body = complete_body()
        body["commitments"][0]["due_date"] = past(2)
        body["commitments"][1]["due_date"] = past(1)
        h = await accepted(one, body)
        draft = complete_body()
        draft["commitments"][0]["due_date"] = past(5)
        await create(one, draft)  # a draft's commitments are not live yet: never flagged
        # A second replica on the same database (its own overdue loop runs a pass at start-up too).
        # Only one relay: SQLite relays are single-process by design (PostgreSQL ones claim rows).
        async with service("handoff", run_consumers=False, run_relay=False, overdue_check_interval=3600,
                           database_url=one.settings.database_url) as two:
            results = await asyncio.gather(
                scan_overdue(one.ctx.session_factory, one.ctx.outbox, batch_size=1),
                scan_overdue(two.ctx.session_factory, two.ctx.outbox, batch_size=1),
                scan_overdue(two.ctx.session_factory, two.ctx.outbox, batch_size=500),
            )
            assert sum(results) <= 2
            assert await scan_overdue(one.ctx.session_factory, one.ctx.outbox, batch_size=500) == 0
            assert await scan_overdue(two.ctx.session_factory, two.ctx.outbox, batch_size=500) == 0

        events = await commitment_events(one)
        assert sorted(e["data"]["commitment_id"] for e in events) == sorted(c["id"] for c in h["commitments"])
        assert all(e["data"]["status"] == "at_risk" and e["data"]["overdue"] is True
                   and e["data"]["previous_status"] == "open" for e in events)
        async with one.ctx.session_factory() as s:
            changes = (await s.execute(select(CommitmentChange.cause))).scalars().all()
        assert sorted(changes) == ["overdue_scan", "overdue_scan"]

        async def published() -> list:
            evs = [e for e in await kafka.events(HANDOFF_TOPIC, settle=0.3) if e.type.endswith("commitment.updated")]
            return evs if len(evs) >= 2 else []

        await eventually(published)
        evs = [e for e in await kafka.events(HANDOFF_TOPIC, settle=1.0) if e.type.endswith("commitment.updated")]
        assert len(evs) == 2

        # Moving the due date re-arms the check for the new date only.
        cid = h["commitments"][0]["id"]
        r = await one.client.patch(f"/v1/handoffs/{h['id']}/commitments/{cid}",
                                   json={"status": "in_progress", "due_date": past(1), "note": "re-planned"})
        assert r.status_code == 200, r.text
        assert await scan_overdue(one.ctx.session_factory, one.ctx.outbox, batch_size=10) == 1
        assert await scan_overdue(one.ctx.session_factory, one.ctx.outbox, batch_size=10) == 0


async def test_task_completed_delivers_commitment_once(service, kafka) -> None:
    async with service("handoff", overdue_check_interval=3600) as svc:
        h = await accepted(svc)
        sso, training = h["commitments"]
        account = h["account"]["external_id"]
        data = {"account_id": account, "task_id": "t-1", "title": "SSO", "commitment_id": sso["id"],
                "handoff_id": h["id"]}
        first = make_event("postsales.task.completed", account, data)
        again_other_id = make_event("postsales.task.completed", account, data | {"task_id": "t-1"})
        overdue = make_event("postsales.task.overdue", account, {
            "account_id": account, "task_id": "t-2", "title": "Training", "commitment_id": training["id"]})
        unrelated = make_event("postsales.task.completed", account, {
            "account_id": account, "task_id": "t-3", "title": "Kickoff"})
        unknown = make_event("postsales.task.completed", account, {
            "account_id": account, "task_id": "t-4", "title": "?", "commitment_id": "no-such-commitment"})
        await kafka.publish(LIFECYCLE_TOPIC, [first, first, unrelated, unknown, overdue])
        await kafka.publish(LIFECYCLE_TOPIC, [again_other_id, first])

        async def settled() -> bool:
            async with svc.ctx.session_factory() as s:
                statuses = dict((await s.execute(select(Commitment.id, Commitment.status))).all())
            return statuses[sso["id"]] == "delivered" and statuses[training["id"]] == "at_risk"

        await eventually(settled)
        consumer = svc.ctx.consumers[0]

        async def all_consumed() -> bool:
            return consumer.stats["applied"] + consumer.stats["duplicates"] >= 7

        await eventually(all_consumed)
        assert consumer.stats["dlq"] == 0

        events = await commitment_events(svc)
        assert [(e["data"]["commitment_id"], e["data"]["status"], e["data"]["cause"]) for e in events] == [
            (sso["id"], "delivered", "task.completed"), (training["id"], "at_risk", "task.overdue")]
        assert events[0]["data"]["delivered_at"].startswith(first.time.isoformat()[:19])
        r = await svc.client.get(f"/v1/handoffs/{h['id']}/commitments/{sso['id']}")
        assert [(x["cause"], x["cause_ref"]) for x in r.json()["history"]] == [("task.completed", "task t-1")]
        assert await outbox_types(svc) == ["postsales.handoff.submitted", "postsales.handoff.accepted",
                                           "postsales.commitment.updated", "postsales.commitment.updated"]

        async def on_bus() -> list:
            evs = [e for e in await kafka.events(HANDOFF_TOPIC, settle=0.3) if e.type.endswith("commitment.updated")]
            return evs if len(evs) >= 2 else []

        await eventually(on_bus)
        assert len([e for e in await kafka.events(HANDOFF_TOPIC, settle=1.0)
                    if e.type.endswith("commitment.updated")]) == 2


async def test_background_loop_flags_overdue_commitments(service) -> None:
    async with service("handoff", run_consumers=False, run_relay=False, overdue_check_interval=0.1) as svc:
        body = complete_body()
        body["commitments"][0]["due_date"] = past(1)
        h = await accepted(svc, body)
        late, on_time = h["commitments"]

        async def flagged() -> bool:
            r = await svc.client.get(f"/v1/handoffs/{h['id']}/commitments/{late['id']}")
            return r.json()["status"] == "at_risk"

        await eventually(flagged)
        await asyncio.sleep(0.5)  # several more passes
        events = await commitment_events(svc)
        assert [(e["data"]["commitment_id"], e["data"]["status"]) for e in events] == [(late["id"], "at_risk")]
        r = await svc.client.get("/v1/commitments?overdue=true")
        assert [c["id"] for c in r.json()["items"]] == [late["id"]]
        assert on_time["id"] not in [c["id"] for c in r.json()["items"]]
        r = await svc.client.get("/v1/handoffs?overdue=true")
        assert [x["id"] for x in r.json()["items"]] == [h["id"]]
