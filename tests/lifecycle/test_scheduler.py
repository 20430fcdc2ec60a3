"""Renewal windows and overdue notices: exactly once across passes, races, restarts and replicas."""

from __future__ import annotations

import asyncio
import datetime as dt

from services.lifecycle.scheduler import run_pass
from shared.events.registry import LIFECYCLE_TOPIC
from shared.testing import eventually
from tests.lifecycle.conftest import HTTP_ONLY, outbox_events, set_clock

RENEWAL = dt.date(2027, 1, 5)
WINDOW = "postsales.renewal.window_entered"


def days_before(n: int, day: dt.date = RENEWAL) -> dt.date:
    return day - dt.timedelta(days=n)


async def windows(svc, account: str | None = None) -> list[tuple[str, str, int]]:
    return [(e["subject"], e["data"]["renewal_date"], e["data"]["window_days"])
            for e in await outbox_events(svc, WINDOW) if account is None or e["subject"] == account]


async def test_each_renewal_window_fires_once(service, kafka) -> None:
    async with service("lifecycle", **HTTP_ONLY) as svc:
        c = svc.client
        for body in ({"id": "acme", "name": "Acme", "stage": "adoption", "renewal_date": RENEWAL.isoformat(),
                      "arr": "1000", "currency": "EUR"},
                     {"id": "gone", "name": "Gone", "stage": "adoption", "renewal_date": RENEWAL.isoformat()},
                     {"id": "norenewal", "name": "No renewal date", "stage": "adoption"}):
            assert (await c.post("/v1/accounts", json=body)).status_code == 201
        assert (await c.post("/v1/accounts/gone/transitions", json={"to": "churned"})).status_code == 201

        set_clock(svc, days_before(121))
        assert (await run_pass(svc.ctx)).windows_fired == 0
        set_clock(svc, days_before(120))
        assert (await run_pass(svc.ctx)).windows_fired == 1
        assert (await run_pass(svc.ctx)).windows_fired == 0
        # Jumping past a boundary catches up with the window entered.
        set_clock(svc, days_before(61))
        assert (await run_pass(svc.ctx)).windows_fired == 1
        # Two passes racing: both remaining windows fire once between them.
        set_clock(svc, days_before(30))
        results = await asyncio.gather(run_pass(svc.ctx), run_pass(svc.ctx), run_pass(svc.ctx))
        assert sum(r.windows_fired for r in results) == 2
        rd = RENEWAL.isoformat()
        assert await windows(svc) == [("acme", rd, 120), ("acme", rd, 90), ("acme", rd, 60), ("acme", rd, 30)]
        first = (await outbox_events(svc, WINDOW))[0]["data"]
        assert (first["arr"], first["currency"], first["days_left"]) == ("1000.00", "EUR", 120)
        database_url = svc.settings.database_url

    # A restart on the same database, now with the scheduler loop itself running: nothing fires again.
    async with service("lifecycle", database_url=database_url, run_consumers=False, scheduler_interval=0.05,
                       clock_now=dt.datetime.combine(days_before(30), dt.time(9), dt.UTC)) as svc:
        await asyncio.sleep(0.5)
        assert len(await windows(svc)) == 4
        # A new renewal date re-arms the windows (and only the ones entered).
        r = await svc.client.patch("/v1/accounts/acme", json={"renewal_date": "2027-03-01"})
        assert r.status_code == 200, r.text
        await eventually(lambda: _has(svc, ("acme", "2027-03-01", 90)), message="re-armed windows")
        await asyncio.sleep(0.3)
        assert [w for w in await windows(svc) if w[1] == "2027-03-01"] == [
            ("acme", "2027-03-01", 120), ("acme", "2027-03-01", 90)]  # 85 days left

        # Everything in the outbox reaches the broker.
        async def on_bus() -> bool:
            ids = {e.id for e in await kafka.events(LIFECYCLE_TOPIC, settle=0.2) if e.type == WINDOW}
            return ids == {e["id"] for e in await outbox_events(svc, WINDOW)}

        await eventually(on_bus, message="window events on the bus")


async def test_two_replicas_fire_each_window_once(service) -> None:
    clock = dt.datetime.combine(days_before(45), dt.time(9), dt.UTC)
    async with service("lifecycle", **HTTP_ONLY) as setup:
        for i in range(20):
            r = await setup.client.post("/v1/accounts", json={
                "id": f"acct-{i:02d}", "name": f"Account {i}", "stage": "adoption",
                "renewal_date": (RENEWAL + dt.timedelta(days=i % 3)).isoformat()})
            assert r.status_code == 201
        database_url = setup.settings.database_url
    replica = {"database_url": database_url, "run_consumers": False, "run_relay": False, "scheduler_interval": 0.01,
               "scheduler_batch_size": 3, "clock_now": clock}
    async with service("lifecycle", **replica) as a, service("lifecycle", **replica) as b:
        await eventually(lambda: _count(a, 20 * 3), message="windows fired")
        await asyncio.sleep(0.5)
        fired = await windows(b)
    assert len(fired) == len(set(fired)) == 20 * 3
    assert {w for _, _, w in fired} == {120, 90, 60}


async def test_overdue_tasks_are_announced_once(service) -> None:
    async with service("lifecycle", **HTTP_ONLY) as svc:
        c = svc.client
        set_clock(svc, dt.date(2026, 1, 1))
        await c.post("/v1/accounts", json={"id": "acme", "name": "Acme", "contract_start": "2026-01-01"})
        tasks = (await c.get("/v1/accounts/acme/tasks")).json()["items"]
        kickoff, setup = tasks[0], tasks[1]  # due 2026-01-08 and 2026-01-22
        assert (await run_pass(svc.ctx)).overdue_notified == 0

        set_clock(svc, dt.date(2026, 1, 9))
        results = await asyncio.gather(run_pass(svc.ctx), run_pass(svc.ctx))
        assert sum(r.overdue_notified for r in results) == 1
        assert (await run_pass(svc.ctx)).overdue_notified == 0
        overdue = await outbox_events(svc, "postsales.task.overdue")
        assert [(e["data"]["task_id"], e["data"]["days_overdue"]) for e in overdue] == [(kickoff["id"], 1)]

        # A new due date re-arms the notice; done tasks never fire.
        await c.patch(f"/v1/accounts/acme/tasks/{kickoff['id']}", json={"due_date": "2026-01-15"})
        await c.patch(f"/v1/accounts/acme/tasks/{setup['id']}", json={"status": "done"})
        set_clock(svc, dt.date(2026, 1, 30))
        assert (await run_pass(svc.ctx)).overdue_notified == 1
        overdue = await outbox_events(svc, "postsales.task.overdue")
        assert [(e["data"]["task_id"], e["data"]["due_date"]) for e in overdue] == [
            (kickoff["id"], "2026-01-08"), (kickoff["id"], "2026-01-15")]
        # Churned accounts are left alone.
        await c.post("/v1/accounts/acme/transitions", json={"to": "churned"})
        set_clock(svc, dt.date(2026, 6, 1))
        assert (await run_pass(svc.ctx)).overdue_notified == 0


async def _has(svc, window: tuple[str, str, int]) -> bool:
    return window in await windows(svc)


async def _count(svc, n: int) -> bool:
    return len(await windows(svc)) >= n
