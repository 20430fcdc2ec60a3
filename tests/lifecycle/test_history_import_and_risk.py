"""Importing history: transitions, renewals and task completions take when they happened (`at`), and
their events carry that time; and the account carries metrics' latest churn risk."""

from __future__ import annotations

import datetime as dt

from services.lifecycle.consumers import make_handler
from shared.db import utcnow
from shared.testing import make_event
from tests.lifecycle.conftest import HTTP_ONLY, assert_problem, outbox_events


async def test_recorded_facts_take_when_they_happened(service) -> None:
    now = utcnow()
    async with service("lifecycle", **HTTP_ONLY) as svc:
        c = svc.client
        start = (now - dt.timedelta(days=500)).date()
        r = await c.post("/v1/accounts", json={"id": "old-co", "name": "Old Co", "stage": "onboarding", "arr": "1000",
                                               "currency": "EUR", "contract_start": start.isoformat(),
                                               "renewal_date": (start + dt.timedelta(days=365)).isoformat()})
        assert r.status_code == 201, r.text
        go_live = now - dt.timedelta(days=400)
        tasks = (await c.get("/v1/accounts/old-co/tasks")).json()["items"]
        live = next(t for t in tasks if t["milestone"] == "go_live")
        r = await c.patch(f"/v1/accounts/old-co/tasks/{live['id']}", json={"status": "done", "at": go_live.isoformat()})
        assert r.status_code == 200 and r.json()["completed_at"] == go_live.isoformat().replace("+00:00", "Z")
        r = await c.post("/v1/accounts/old-co/transitions", json={"to": "adoption", "at": go_live.isoformat()})
        assert r.status_code == 201 and r.json()["at"].startswith(go_live.date().isoformat())
        renewed_at = dt.datetime.combine(start + dt.timedelta(days=365), dt.time(10), tzinfo=dt.UTC)
        r = await c.post("/v1/accounts/old-co/renewals", json={"outcome": "renewed", "arr_after": "1200",
                                                              "at": renewed_at.isoformat()})
        assert r.status_code == 201, r.text
        assert r.json()["recorded_at"].startswith(renewed_at.date().isoformat())
        by_type = {e["type"]: e for e in await outbox_events(svc)}
        assert by_type["postsales.task.completed"]["time"].startswith(go_live.date().isoformat())
        assert by_type["postsales.onboarding.completed"]["data"]["completed_at"].startswith(go_live.date().isoformat())
        assert by_type["postsales.account.stage_changed"]["time"].startswith(go_live.date().isoformat())
        assert by_type["postsales.renewal.recorded"]["time"].startswith(renewed_at.date().isoformat())
        assert by_type["postsales.account.updated"]["time"].startswith(renewed_at.date().isoformat())
        # Not in the future, not older than three years; nothing written on refusal.
        before = len(await outbox_events(svc))
        for body in ({"to": "churned", "at": (now + dt.timedelta(days=2)).isoformat()},
                     {"to": "churned", "at": (now - dt.timedelta(days=4 * 365)).isoformat()}):
            problem = assert_problem(await c.post("/v1/accounts/old-co/transitions", json=body), 422)
            assert problem["errors"][0]["loc"] == ["body", "at"]
        assert len(await outbox_events(svc)) == before
        assert (await c.get("/v1/accounts/old-co")).json()["stage"] == "adoption"


async def test_the_account_carries_the_latest_churn_risk(service) -> None:
    now = utcnow()
    async with service("lifecycle", **HTTP_ONLY) as svc:
        c = svc.client
        assert (await c.post("/v1/accounts", json={"id": "r1", "name": "R1"})).status_code == 201
        assert (await c.get("/v1/accounts/r1")).json()["risk"] is None
        handle = make_handler(svc.settings)

        def changed(old: str | None, new: str, p: float, at: dt.datetime):
            return make_event("postsales.risk.changed", "r1", {
                "account_id": "r1", "old_band": old, "new_band": new, "old_probability": None,
                "new_probability": p, "drivers": [{"name": "nps_last", "value": 3, "contribution": 0.8}],
                "model_version": 1, "initial": old is None}, source="/services/metrics", time=at)

        async with svc.ctx.session_factory() as s, s.begin():
            await handle(s, changed(None, "medium", 0.3, now - dt.timedelta(hours=2)))
        assert (await c.get("/v1/accounts/r1")).json()["risk"]["band"] == "medium"
        async with svc.ctx.session_factory() as s, s.begin():
            await handle(s, changed("medium", "high", 0.62, now - dt.timedelta(hours=1)))
            await handle(s, changed(None, "low", 0.1, now - dt.timedelta(hours=3)))  # late and older: ignored
        risk = (await c.get("/v1/accounts/r1")).json()["risk"]
        assert (risk["band"], risk["probability"]) == ("high", 0.62)
        listed = (await c.get("/v1/accounts")).json()["items"]
        assert listed[0]["risk"]["band"] == "high"
        timeline = (await c.get("/v1/accounts/r1/timeline")).json()["items"]
        assert sum(1 for t in timeline if t["type"] == "postsales.risk.changed") == 3


async def test_every_recorded_time_is_bounded_by_the_configured_skew_and_age(service) -> None:
    now = utcnow()
    async with service("lifecycle", max_event_age="30d", max_future_skew="2h", **HTTP_ONLY) as svc:
        c = svc.client
        assert (await c.post("/v1/accounts", json={"id": "b-co", "name": "B Co"})).status_code == 201
        tasks = (await c.get("/v1/accounts/b-co/tasks")).json()["items"]
        before = len(await outbox_events(svc))
        for at, says in ((now - dt.timedelta(days=31), "maximum event age of 30 days (MAX_EVENT_AGE)"),
                         (now + dt.timedelta(hours=3), "more than 2 h in the future (MAX_FUTURE_SKEW)")):
            for path, body in (("/v1/accounts/b-co/touchpoints", {"kind": "qbr"}),
                               ("/v1/accounts/b-co/transitions", {"to": "adoption"}),
                               ("/v1/accounts/b-co/renewals", {"outcome": "renewed"})):
                problem = assert_problem(await c.post(path, json={**body, "at": at.isoformat()}), 422)
                assert problem["errors"][0]["loc"] == ["body", "at"] and says in problem["errors"][0]["msg"], path
            task = f"/v1/accounts/b-co/tasks/{tasks[0]['id']}"
            r = await c.patch(task, json={"status": "done", "at": at.isoformat()})
            assert says in assert_problem(r, 422)["errors"][0]["msg"]
        assert len(await outbox_events(svc)) == before  # nothing written on refusal
        # Within the bounds, the same requests are taken, with their own times.
        r = await c.post("/v1/accounts/b-co/touchpoints",
                         json={"kind": "qbr", "at": (now - dt.timedelta(days=29)).isoformat()})
        assert r.status_code == 201 and r.json()["at"].startswith((now - dt.timedelta(days=29)).date().isoformat())
