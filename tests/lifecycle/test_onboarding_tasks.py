"""The onboarding plan, its status by due dates, task updates and completion events."""

from __future__ import annotations

import datetime as dt
import json

from services.lifecycle.settings import Settings
from tests.lifecycle.conftest import HTTP_ONLY, assert_problem, outbox_events, set_clock

START = dt.date(2026, 1, 5)


async def _tasks(c, account: str, **params) -> list[dict]:
    r = await c.get(f"/v1/accounts/{account}/tasks", params=params)
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def _onboarding(c, account: str) -> dict:
    return (await c.get(f"/v1/accounts/{account}")).json()["onboarding"]


async def test_plan_status_progress_and_go_live(service) -> None:
    async with service("lifecycle", **HTTP_ONLY) as svc:
        c = svc.client
        set_clock(svc, START)
        r = await c.post("/v1/accounts", json={"id": "hooli", "name": "Hooli", "owner": "csm.jane@vendor.example",
                                               "contract_start": START.isoformat()})
        assert r.status_code == 201, r.text
        plan = await _tasks(c, "hooli")
        assert [t["milestone"] for t in plan] == ["kickoff", "initial_setup", "data_migration", "training", "go_live"]
        offsets = (7, 21, 45, 60, 90)
        assert [t["due_date"] for t in plan] == [(START + dt.timedelta(days=d)).isoformat() for d in offsets]
        assert {t["owner"] for t in plan} == {"csm.jane@vendor.example"}
        ids = {t["milestone"]: t["id"] for t in plan}
        ob = await _onboarding(c, "hooli")
        assert (ob["status"], ob["progress"], ob["planned_go_live"]) == ("on_track", 0, "2026-04-05")

        set_clock(svc, dt.date(2026, 1, 13))  # kickoff one day late
        ob = await _onboarding(c, "hooli")
        assert (ob["status"], ob["tasks_overdue"]) == ("behind", 1)
        assert [t["milestone"] for t in await _tasks(c, "hooli", overdue="true")] == ["kickoff"]
        set_clock(svc, dt.date(2026, 1, 26))  # kickoff 14 days late
        assert (await _onboarding(c, "hooli"))["status"] == "stuck"

        async def patch(task_id: str, body: dict, status: int = 200) -> dict:
            r = await c.patch(f"/v1/accounts/hooli/tasks/{task_id}", json=body)
            assert r.status_code == status, r.text
            return r.json()

        done = await patch(ids["kickoff"], {"status": "done"})
        assert done["completed_at"].startswith("2026-01-26") and done["overdue"] is False
        ob = await _onboarding(c, "hooli")
        assert (ob["status"], ob["progress"], ob["tasks_done"]) == ("on_track", 20, 1)
        # A done task is final; bad input is refused and changes nothing.
        assert_problem(await c.patch(f"/v1/accounts/hooli/tasks/{ids['kickoff']}", json={"status": "open"}), 409)
        assert_problem(await c.patch(f"/v1/accounts/hooli/tasks/{ids['training']}", json={"status": "finished"}), 422)
        assert_problem(await c.patch(f"/v1/accounts/hooli/tasks/{ids['training']}", json={"status": None}), 422)
        assert_problem(await c.patch("/v1/accounts/hooli/tasks/nope", json={"status": "done"}), 404)
        assert_problem(await c.patch(f"/v1/accounts/ghost/tasks/{ids['training']}", json={"status": "done"}), 404)

        # Cancelling drops a task from the plan; an ad-hoc task never counts.
        await patch(ids["data_migration"], {"status": "cancelled"})
        r = await c.post("/v1/accounts/hooli/tasks", json={"title": "Set up SSO", "due_date": "2026-01-10"})
        assert r.status_code == 201 and r.json()["kind"] == "task" and r.json()["owner"] == "csm.jane@vendor.example"
        ob = await _onboarding(c, "hooli")
        assert (ob["tasks_total"], ob["progress"], ob["status"]) == (4, 25, "on_track")

        await patch(ids["initial_setup"], {"status": "in_progress", "owner": "tam.li@vendor.example"})
        await patch(ids["initial_setup"], {"status": "done"})
        await patch(ids["training"], {"status": "done"})
        assert len(await outbox_events(svc, "postsales.task.completed")) == 3
        assert await outbox_events(svc, "postsales.onboarding.completed") == []

        # Go-live done ends onboarding, once.
        set_clock(svc, dt.datetime(2026, 3, 30, 15, 0, tzinfo=dt.UTC))
        await patch(ids["go_live"], {"status": "done"})
        await patch(ids["go_live"], {"status": "done"})
        completed = await outbox_events(svc, "postsales.onboarding.completed")
        assert len(completed) == 1
        data = completed[0]["data"]
        assert data["completed_at"].startswith("2026-03-30T15:00:00")
        assert (data["planned_go_live"], data["contract_start"], data["account_id"]) == ("2026-04-05", "2026-01-05",
                                                                                         "hooli")
        ob = await _onboarding(c, "hooli")
        assert (ob["status"], ob["progress"]) == ("completed", 100) and ob["completed_at"].startswith("2026-03-30")
        # Completion events carry the task; milestone tasks have no commitment.
        go_live_event = (await outbox_events(svc, "postsales.task.completed"))[-1]["data"]
        assert go_live_event["milestone"] == "go_live" and go_live_event["commitment_id"] is None


async def test_configurable_template_and_missed_go_live(service) -> None:
    template = json.dumps([{"key": "kickoff", "title": "Kickoff", "offset_days": 0},
                           {"key": "launch", "title": "Launch", "offset_days": 30}])
    settings = Settings(onboarding_milestones=template, go_live_milestone="launch", renewal_windows="45, 15")
    assert settings.renewal_windows == [45, 15]
    async with service("lifecycle", onboarding_milestones=settings.onboarding_milestones,
                       go_live_milestone="launch", **HTTP_ONLY) as svc:
        c = svc.client
        set_clock(svc, dt.date(2026, 6, 1))
        await c.post("/v1/accounts", json={"id": "pied", "name": "Pied Piper", "contract_start": "2026-06-01"})
        plan = await _tasks(c, "pied")
        assert [(t["milestone"], t["due_date"]) for t in plan] == [("kickoff", "2026-06-01"), ("launch", "2026-07-01")]
        set_clock(svc, dt.date(2026, 7, 2))  # launch missed by a day: stuck at once
        ob = await _onboarding(c, "pied")
        assert (ob["status"], ob["planned_go_live"]) == ("stuck", "2026-07-01")
        # Moving the go-live due date re-plans it.
        await c.patch(f"/v1/accounts/pied/tasks/{plan[1]['id']}", json={"due_date": "2026-07-20"})
        await c.patch(f"/v1/accounts/pied/tasks/{plan[0]['id']}", json={"status": "done"})
        ob = await _onboarding(c, "pied")
        assert (ob["status"], ob["planned_go_live"], ob["progress"]) == ("on_track", "2026-07-20", 50)
        await c.patch(f"/v1/accounts/pied/tasks/{plan[1]['id']}", json={"status": "done"})
        assert len(await outbox_events(svc, "postsales.onboarding.completed")) == 1
