"""Playbooks: CRUD and validation, runs started by events on the real broker (exactly once, one active
run, cooldown, trigger age), completion and cancellation, stats, the worklist."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

from sqlalchemy import delete, select

from services.lifecycle.models import PlaybookRun, infra
from services.lifecycle.scheduler import run_pass
from shared.events import CloudEvent
from shared.events.registry import FEEDBACK_TOPIC, LIFECYCLE_TOPIC, METRICS_TOPIC
from shared.testing import RunningService, eventually, make_event
from tests.lifecycle.conftest import HTTP_ONLY, assert_problem, outbox_events, set_clock

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
OWNER = "csm.jane@vendor.example"
NPS_DEFAULT = "00000000-0000-4000-9000-000000000002"
RISK_DEFAULT = "00000000-0000-4000-9000-000000000001"
RENEWAL_DEFAULT = "00000000-0000-4000-9000-000000000003"
ONBOARDING_DEFAULT = "00000000-0000-4000-9000-000000000004"
NPS_SOURCE = "/services/metrics"

PLAY = {
    "name": "Ticket storm",
    "description": "Three tickets in a row: call the customer.",
    "trigger": {"event_type": "postsales.ticket.*", "conditions": {"data.priority": {"in": ["high", "urgent"]}}},
    "tasks": [{"title": "Call the customer about their tickets", "description": None, "due_in_days": 1,
               "owner": "account_owner"},
              {"title": "Review the tickets with support", "due_in_days": None, "owner": "support.lead@vendor.example",
               "description": "Which product area?"}],
    "cooldown": "3d",
    "enabled": True,
}


def nps(account: str, score: int, at: dt.datetime, *, id: str | None = None) -> CloudEvent:
    return make_event("postsales.survey.nps", account, {"score": score, "respondent": "pat@customer.example"},
                      source=NPS_SOURCE, id=id, time=at)


async def new_account(svc: RunningService, account_id: str = "acme", *, stage: str = "adoption",
                      owner: str | None = OWNER, **extra: Any) -> None:
    body = {"id": account_id, "name": f"{account_id} Inc", "stage": stage, "owner": owner, **extra}
    r = await svc.client.post("/v1/accounts", json=body)
    assert r.status_code == 201, r.text


async def runs(svc: RunningService, account_id: str = "acme") -> list[dict[str, Any]]:
    r = await svc.client.get(f"/v1/accounts/{account_id}/playbook-runs")
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def processed(svc: RunningService, *events: CloudEvent) -> bool:
    """Whether the lifecycle consumer has committed every one of ``events`` (by source and id)."""
    t = infra.processed_events
    async with svc.ctx.session_factory() as s:
        rows = (await s.execute(select(t.c.source, t.c.event_id))).all()
    seen = {(r.source, r.event_id) for r in rows}
    return all((e.source, e.id) in seen for e in events)


async def consumed(svc: RunningService, *events: CloudEvent) -> None:
    await eventually(lambda: processed(svc, *events), timeout=60, message="events consumed")


async def start_nps_only(svc: RunningService, *, cooldown: str = "14d") -> None:
    """Leave only the NPS default enabled (so counts are about it), with the given cooldown."""
    for pid in (RISK_DEFAULT, RENEWAL_DEFAULT, ONBOARDING_DEFAULT):
        body = (await svc.client.get(f"/v1/playbooks/{pid}")).json()
        assert (await svc.client.put(f"/v1/playbooks/{pid}", json={**body, "enabled": False})).status_code == 200
    body = (await svc.client.get(f"/v1/playbooks/{NPS_DEFAULT}")).json()
    r = await svc.client.put(f"/v1/playbooks/{NPS_DEFAULT}", json={**body, "cooldown": cooldown})
    assert r.status_code == 200, r.text


# --- CRUD and validation -------------------------------------------------------------------------

async def test_defaults_ship_and_crud_round_trips(service) -> None:
    async with service("lifecycle", **HTTP_ONLY) as svc:
        c = svc.client
        r = await c.get("/v1/playbooks")
        assert r.status_code == 200, r.text
        defaults = {p["id"]: p for p in r.json()["items"]}
        assert set(defaults) == {RISK_DEFAULT, NPS_DEFAULT, RENEWAL_DEFAULT, ONBOARDING_DEFAULT}
        assert all(p["builtin"] and p["enabled"] for p in defaults.values())
        assert defaults[RISK_DEFAULT]["trigger"] == {"event_type": "postsales.risk.changed",
                                                     "conditions": {"data.new_band": {"eq": "high"}}}
        assert defaults[NPS_DEFAULT]["trigger"]["conditions"] == {"data.score": {"lte": 6}}
        assert defaults[NPS_DEFAULT]["tasks"][0]["due_in_days"] == 2
        assert defaults[NPS_DEFAULT]["tasks"][0]["owner"] == "account_owner"
        assert defaults[RENEWAL_DEFAULT]["trigger"]["conditions"] == {"data.window_days": {"eq": 90}}
        assert defaults[ONBOARDING_DEFAULT]["trigger"]["conditions"]["account.stage"] == {"eq": "onboarding"}

        r = await c.post("/v1/playbooks", json=PLAY, headers={"Idempotency-Key": "pb-1"})
        assert r.status_code == 201, r.text
        created = r.json()
        assert {k: created[k] for k in PLAY} == PLAY and created["builtin"] is False
        again = await c.post("/v1/playbooks", json=PLAY, headers={"Idempotency-Key": "pb-1"})
        assert again.status_code == 201 and again.json()["id"] == created["id"]
        pid = created["id"]

        # What GET returns, PUT accepts, and changes nothing.
        got = (await c.get(f"/v1/playbooks/{pid}")).json()
        r = await c.put(f"/v1/playbooks/{pid}", json=got)
        assert r.status_code == 200, r.text
        assert {k: v for k, v in r.json().items() if k != "updated_at"} == \
            {k: v for k, v in got.items() if k != "updated_at"}
        changed = {**got, "cooldown": "1h", "enabled": False, "tasks": got["tasks"][:1]}
        r = await c.put(f"/v1/playbooks/{pid}", json=changed)
        assert r.status_code == 200, r.text
        assert (r.json()["cooldown"], r.json()["enabled"], len(r.json()["tasks"])) == ("1h", False, 1)
        assert (await c.get(f"/v1/playbooks/{pid}")).json()["cooldown"] == "1h"
        enabled_only = (await c.get("/v1/playbooks", params={"enabled": "true"})).json()["items"]
        assert pid not in {p["id"] for p in enabled_only} and len(enabled_only) == 4

        # A default is like any other: editable and deletable.
        nps_default = defaults[NPS_DEFAULT]
        r = await c.put(f"/v1/playbooks/{NPS_DEFAULT}", json={**nps_default, "name": "Detractor call"})
        assert r.status_code == 200 and r.json()["name"] == "Detractor call"
        assert (await c.delete(f"/v1/playbooks/{NPS_DEFAULT}")).status_code == 204
        assert_problem(await c.get(f"/v1/playbooks/{NPS_DEFAULT}"), 404)
        assert_problem(await c.get(f"/v1/playbooks/{NPS_DEFAULT}/stats"), 404)
        assert_problem(await c.delete(f"/v1/playbooks/{NPS_DEFAULT}"), 404)

        # A second playbook with the same name is a conflict, on create and on rename.
        assert_problem(await c.post("/v1/playbooks", json={**PLAY, "enabled": True}), 409)
        assert_problem(await c.put(f"/v1/playbooks/{pid}", json={**changed, "name": defaults[RISK_DEFAULT]["name"]}),
                       409)

        ro = svc.client_for("test-lifecycle-ro-token-01234567")
        async with ro:
            assert (await ro.get("/v1/playbooks")).status_code == 200
            assert_problem(await ro.post("/v1/playbooks", json={**PLAY, "name": "x"}), 403)


async def test_invalid_playbooks_are_422_with_the_place_and_nothing_is_written(service) -> None:
    async with service("lifecycle", **HTTP_ONLY) as svc:
        c = svc.client

        async def bad(body: dict[str, Any], loc: list[Any]) -> str:
            r = await c.post("/v1/playbooks", json=body)
            problem = assert_problem(r, 422)
            locs = [e["loc"] for e in problem["errors"]]
            assert loc in locs, (loc, problem)
            msg: str = next(e["msg"] for e in problem["errors"] if e["loc"] == loc)
            return msg

        msg = await bad({**PLAY, "trigger": {"event_type": "postsales.survey.nsp", "conditions": {}}},
                        ["body", "trigger", "event_type"])
        assert "postsales.survey.nps" in msg and "known types" in msg  # names the known types
        assert "matches no event" in await bad({**PLAY, "trigger": {"event_type": "usage.login"}},
                                               ["body", "trigger", "event_type"])
        await bad({**PLAY, "trigger": {"event_type": "postsales.survey.nps",
                                       "conditions": {"data.score": {"below": 6}}}},
                  ["body", "trigger", "conditions", "data.score", "below"])
        await bad({**PLAY, "trigger": {"event_type": "postsales.survey.nps", "conditions": {"account.ceo": {"eq": 1}}}},
                  ["body", "trigger", "conditions", "account.ceo"])
        await bad({**PLAY, "cooldown": "a week"}, ["body", "cooldown"])
        await bad({**PLAY, "tasks": []}, ["body", "tasks"])
        await bad({**PLAY, "tasks": [{"title": "x", "due_in_days": -1}]}, ["body", "tasks", 0, "due_in_days"])
        await bad({**PLAY, "tasks": [{"title": "x", "due_in_days": "2"}]}, ["body", "tasks", 0, "due_in_days"])
        await bad({**PLAY, "surprise": True}, ["body", "surprise"])
        assert len((await c.get("/v1/playbooks")).json()["items"]) == 4

        pid = (await c.post("/v1/playbooks", json=PLAY)).json()["id"]
        got = (await c.get(f"/v1/playbooks/{pid}")).json()
        r = await c.put(f"/v1/playbooks/{pid}", json={**got, "id": RISK_DEFAULT})
        assert_problem(r, 422)
        r = await c.put(f"/v1/playbooks/{pid}", json={**got, "trigger": {"event_type": "nope.*"}})
        assert_problem(r, 422)
        assert (await c.get(f"/v1/playbooks/{pid}")).json() == got
        assert_problem(await c.put(f"/v1/playbooks/{uuid.uuid4()}", json=PLAY), 404)


# --- runs ----------------------------------------------------------------------------------------

async def test_a_detractor_starts_one_run_completed_by_its_tasks_and_cooldown_holds(service, kafka) -> None:
    async with service("lifecycle", run_scheduler=False) as svc:
        set_clock(svc, T0)
        await start_nps_only(svc, cooldown="14d")
        await new_account(svc)
        first = nps("acme", 3, T0)
        during = nps("acme", 2, T0 + dt.timedelta(hours=5))
        promoter = nps("acme", 10, T0 + dt.timedelta(hours=1))
        # The same trigger twice (a redelivery), a promoter, and a second detractor during the run.
        await kafka.publish(FEEDBACK_TOPIC, [first, first, promoter])
        await eventually(lambda: runs(svc), timeout=60, message="a run started")
        await kafka.publish(FEEDBACK_TOPIC, [during])
        await consumed(svc, first, promoter, during)

        [run] = await runs(svc)
        assert (run["playbook_id"], run["status"], run["account_id"]) == (NPS_DEFAULT, "active", "acme")
        assert run["trigger"]["event_id"] == first.id and run["ended_at"] is None
        assert dt.datetime.fromisoformat(run["started_at"]) == T0
        [task_id] = run["task_ids"]
        r = await svc.client.get("/v1/tasks", params={"owner": OWNER})
        [task] = r.json()["items"]
        assert task["id"] == task_id and task["kind"] == "playbook" and task["status"] == "open"
        assert task["due_date"] == "2026-12-03"  # within 2 days of the response
        assert task["playbook_run_id"] == run["id"]
        assert task["playbook"] == {"id": NPS_DEFAULT, "name": "NPS detractor follow-up"}
        started = await outbox_events(svc, "postsales.playbook.started")
        assert len(started) == 1
        assert started[0]["data"]["run_id"] == run["id"] and started[0]["data"]["playbook_id"] == NPS_DEFAULT
        assert started[0]["data"]["task_ids"] == [task_id] and started[0]["data"]["status"] == "active"

        # Done completes the run: playbook.completed once on the real topic, even when done is sent twice.
        set_clock(svc, T0 + dt.timedelta(days=1, hours=12))
        for _ in range(2):
            r = await svc.client.patch(f"/v1/accounts/acme/tasks/{task_id}", json={"status": "done"})
            assert r.status_code == 200, r.text
        [run] = await runs(svc)
        assert run["status"] == "completed"
        assert dt.datetime.fromisoformat(run["ended_at"]) == T0 + dt.timedelta(days=1, hours=12)

        async def completed_on_bus() -> list[CloudEvent]:
            return [e for e in await kafka.events(LIFECYCLE_TOPIC, settle=0.3)
                    if e.type == "postsales.playbook.completed"]

        [done] = await eventually(completed_on_bus, timeout=60, message="playbook.completed on the bus")
        assert done.data["run_id"] == run["id"] and done.data["status"] == "completed" and done.subject == "acme"

        r = await svc.client.get(f"/v1/playbooks/{NPS_DEFAULT}/stats")
        assert r.status_code == 200, r.text
        stats = r.json()
        assert (stats["runs"], stats["active"], stats["completed"], stats["cancelled"]) == (1, 0, 1, 0)
        assert stats["median_days_to_complete"] == 1.5

        # Within the cooldown after the end: nothing; after it: a new run.
        set_clock(svc, T0 + dt.timedelta(days=20))
        within = nps("acme", 4, T0 + dt.timedelta(days=10))
        after = nps("acme", 5, T0 + dt.timedelta(days=16))
        await kafka.publish(FEEDBACK_TOPIC, [within])
        await consumed(svc, within)
        assert len(await runs(svc)) == 1
        await kafka.publish(FEEDBACK_TOPIC, [after])
        await eventually(lambda: _count(runs(svc), 2), timeout=60, message="a run after the cooldown")
        newest = (await runs(svc))[0]
        assert newest["trigger"]["event_id"] == after.id and newest["status"] == "active"

        # The account churns: its active run is cancelled with its open tasks, and announced.
        r = await svc.client.post("/v1/accounts/acme/transitions", json={"to": "churned", "reason": "lost"})
        assert r.status_code == 201, r.text
        newest = (await runs(svc))[0]
        assert newest["status"] == "cancelled" and newest["ended_at"] is not None
        tasks = (await svc.client.get("/v1/tasks", params={"account_id": "acme", "status": "cancelled"})).json()
        assert [t["id"] for t in tasks["items"]] == newest["task_ids"]
        ends = await outbox_events(svc, "postsales.playbook.completed")
        assert [e["data"]["status"] for e in ends] == ["completed", "cancelled"]
        stats = (await svc.client.get(f"/v1/playbooks/{NPS_DEFAULT}/stats")).json()
        assert (stats["runs"], stats["completed"], stats["cancelled"], stats["active"]) == (2, 1, 1, 0)
        # A churned account starts nothing.
        late = nps("acme", 1, T0 + dt.timedelta(days=19))
        await kafka.publish(FEEDBACK_TOPIC, [late])
        await consumed(svc, late)
        assert len(await runs(svc)) == 2


async def _count(coro: Any, n: int) -> bool:
    return len(await coro) == n


async def test_old_events_start_nothing(service, kafka) -> None:
    async with service("lifecycle", run_scheduler=False, max_trigger_age="2d") as svc:
        set_clock(svc, T0)
        await start_nps_only(svc)
        await new_account(svc)
        old = nps("acme", 0, T0 - dt.timedelta(days=2, minutes=1))
        await kafka.publish(FEEDBACK_TOPIC, [old])
        await consumed(svc, old)
        assert await runs(svc) == []
        fresh = nps("acme", 0, T0 - dt.timedelta(days=1))
        await kafka.publish(FEEDBACK_TOPIC, [fresh])
        await eventually(lambda: runs(svc), timeout=60, message="a fresh detractor starts a run")
        [run] = await runs(svc)
        assert run["trigger"]["event_id"] == fresh.id


async def test_redelivery_after_a_crash_changes_nothing(service, kafka) -> None:
    """A crash after the commit but before the offsets: the batch comes again, to a restarted consumer.
    Even with the dedup record gone (say, pruned), the same trigger cannot start a second run."""
    async with service("lifecycle", run_scheduler=False) as svc:
        set_clock(svc, T0)
        await start_nps_only(svc, cooldown="0s")
        await new_account(svc)
        trigger = nps("acme", 1, T0)
        await kafka.publish(FEEDBACK_TOPIC, [trigger])
        await eventually(lambda: runs(svc), timeout=60, message="a run started")
        [run] = await runs(svc)
        r = await svc.client.patch(f"/v1/accounts/acme/tasks/{run['task_ids'][0]}", json={"status": "cancelled"})
        assert r.status_code == 200, r.text
        assert (await runs(svc))[0]["status"] == "completed"
        database_url = svc.settings.database_url

    async with service("lifecycle", run_scheduler=False, database_url=database_url) as svc:
        set_clock(svc, T0 + dt.timedelta(hours=1))
        t = infra.processed_events
        async with svc.ctx.session_factory() as s, s.begin():
            await s.execute(delete(t).where(t.c.event_id == trigger.id))
        # The same event again (the broker redelivers it), then a marker proving the consumer got past it.
        marker = nps("acme", 9, T0 + dt.timedelta(minutes=30))
        await kafka.publish(FEEDBACK_TOPIC, [trigger, marker])
        await consumed(svc, trigger, marker)
        assert len(await runs(svc)) == 1
        assert len(await outbox_events(svc, "postsales.playbook.started")) == 1
        # With no cooldown, a new trigger does start the next run.
        another = nps("acme", 2, T0 + dt.timedelta(minutes=40))
        await kafka.publish(FEEDBACK_TOPIC, [another])
        await eventually(lambda: _count(runs(svc), 2), timeout=60, message="the next run")


async def test_one_active_run_per_playbook_and_account_is_a_database_rule(service) -> None:
    async with service("lifecycle", **HTTP_ONLY) as svc:
        await new_account(svc)
        await start_nps_only(svc)
        from services.lifecycle.accounts import repository as accounts_repo
        from services.lifecycle.playbooks import repository as repo
        from services.lifecycle.playbooks import runs as engine
        async with svc.ctx.session_factory() as s, s.begin():
            account = await accounts_repo.get(s, "acme")
            playbook = await repo.get(s, NPS_DEFAULT)
            assert account is not None and playbook is not None
            first = await engine.start(s, playbook, account, engine.TriggerRef.of(nps("acme", 1, T0)))
            assert first is not None
        # Skip the service's own check: the unique key alone refuses a second active run.
        async with svc.ctx.session_factory() as s, s.begin():
            account = await accounts_repo.get(s, "acme")
            playbook = await repo.get(s, NPS_DEFAULT)
            assert account is not None and playbook is not None

            async def no_active(*_: Any) -> None:
                return None

            original = repo.active_run
            repo.active_run = no_active  # type: ignore[assignment]
            try:
                second = await engine.start(s, playbook, account, engine.TriggerRef.of(nps("acme", 2, T0)))
            finally:
                repo.active_run = original  # type: ignore[assignment]
            assert second is None
        async with svc.ctx.session_factory() as s:
            assert len((await s.execute(select(PlaybookRun))).scalars().all()) == 1
        assert len(await outbox_events(svc, "postsales.playbook.started")) == 1

        # Two consumers racing with two detractors for another account: one run between them.
        await new_account(svc, "racy")

        async def consume(event: CloudEvent) -> int:
            async with svc.ctx.session_factory() as s, s.begin():
                return await engine.on_event(s, event, now=T0, max_age=dt.timedelta(days=7))

        started = await asyncio.gather(*(consume(nps("racy", i, T0)) for i in range(4)))
        assert sorted(started) == [0, 0, 0, 1]
        assert len(await runs(svc, "racy")) == 1


async def test_risk_renewal_and_onboarding_defaults_start_their_plays(service, kafka) -> None:
    renewal = dt.date(2027, 3, 1)
    async with service("lifecycle", run_scheduler=False) as svc:
        now = dt.datetime.combine(renewal - dt.timedelta(days=90), dt.time(9), dt.UTC)
        set_clock(svc, now)
        await new_account(svc, "risky", owner="csm.ann@vendor.example")
        await new_account(svc, "renewing", renewal_date=renewal.isoformat())
        await new_account(svc, "onboarding", stage="onboarding", contract_start="2026-06-01")
        await new_account(svc, "adopting", stage="adoption", renewal_date="2029-01-01")
        medium = make_event("postsales.risk.changed", "risky", {"account_id": "risky", "old_band": "low",
                                                               "new_band": "medium", "new_probability": 0.3},
                            source="/services/metrics", time=now - dt.timedelta(hours=1))
        high = make_event("postsales.risk.changed", "risky", {"account_id": "risky", "old_band": "medium",
                                                             "new_band": "high", "new_probability": 0.7},
                          source="/services/metrics", time=now)
        await kafka.publish(METRICS_TOPIC, [medium, high])
        # The scheduler's renewal windows (120 and 90 days) and overdue onboarding tasks come back over
        # the service's own topic; only the 90-day window and the onboarding account's tasks match.
        result = await run_pass(svc.ctx)
        assert result.windows_fired == 2 and result.overdue_notified >= 2

        async def started() -> dict[str, list[str]]:
            out: dict[str, list[str]] = {}
            for acct in ("risky", "renewing", "onboarding", "adopting"):
                out[acct] = [r["playbook_id"] for r in await runs(svc, acct)]
            return out

        expected = {"risky": [RISK_DEFAULT], "renewing": [RENEWAL_DEFAULT], "onboarding": [ONBOARDING_DEFAULT],
                    "adopting": []}
        await eventually(lambda: _equal(started(), expected), timeout=60, message="the default plays")
        windows = [e for e in await outbox_events(svc, "postsales.renewal.window_entered")]
        overdue = await outbox_events(svc, "postsales.task.overdue")
        await consumed(svc, medium, high, *[CloudEvent.model_validate(e) for e in windows + overdue])
        assert await started() == expected  # several overdue tasks, one run
        risky = (await svc.client.get("/v1/tasks", params={"owner": "csm.ann@vendor.example"})).json()["items"]
        assert len(risky) == 3 and {t["playbook"]["id"] for t in risky} == {RISK_DEFAULT}
        [run] = await runs(svc, "risky")
        assert (run["risk_band_start"], run["health_band_start"]) == ("high", None)

        # The save plan worked: risk back to low by the time its tasks are done (five days on: an event
        # further ahead of the service's clock than MAX_FUTURE_SKEW would be dead-lettered).
        set_clock(svc, now + dt.timedelta(days=5))
        low = make_event("postsales.risk.changed", "risky", {"account_id": "risky", "old_band": "high",
                                                            "new_band": "low", "new_probability": 0.1},
                         source="/services/metrics", time=now + dt.timedelta(days=5))
        await kafka.publish(METRICS_TOPIC, [low])
        await consumed(svc, low)
        set_clock(svc, now + dt.timedelta(days=6))
        for t in risky:
            r = await svc.client.patch(f"/v1/accounts/risky/tasks/{t['id']}", json={"status": "done"})
            assert r.status_code == 200, r.text
        [run] = await runs(svc, "risky")
        assert (run["status"], run["risk_band_start"], run["risk_band_end"]) == ("completed", "high", "low")
        stats = (await svc.client.get(f"/v1/playbooks/{RISK_DEFAULT}/stats")).json()
        assert stats["risk"] == {"improved": 1, "unchanged": 0, "worsened": 0, "unknown": 0}
        assert stats["health"]["unknown"] == 1 and stats["median_days_to_complete"] == 6.0
        onboarding_tasks = (await svc.client.get("/v1/tasks", params={"account_id": "onboarding",
                                                                      "kind": "playbook"})).json()["items"]
        assert [t["title"] for t in onboarding_tasks] == ["Unblock the overdue onboarding task",
                                                          "Agree a recovery plan for go-live with the customer"]


async def _equal(coro: Any, expected: Any) -> bool:
    return bool(await coro == expected)


async def test_an_alert_can_start_a_custom_play(service, kafka) -> None:
    async with service("lifecycle", run_scheduler=False) as svc:
        set_clock(svc, T0)
        await new_account(svc)
        play = {"name": "Escalated alert", "trigger": {"event_type": "postsales.alert.fired",
                                                        "conditions": {"data.severity": {"eq": "critical"}}},
                "tasks": [{"title": "Look into the critical alert", "due_in_days": 0,
                           "owner": "tam.li@vendor.example"}]}
        r = await svc.client.post("/v1/playbooks", json=play)
        assert r.status_code == 201, r.text
        pid = r.json()["id"]

        def alert(severity: str) -> CloudEvent:
            return make_event("postsales.alert.fired", "acme", {
                "alert_id": str(uuid.uuid4()), "rule": "health-turned-red", "severity": severity,
                "fingerprint": uuid.uuid4().hex, "status": "firing", "account_id": "acme"},
                source="/services/notifier", time=T0)

        warning, critical = alert("warning"), alert("critical")
        await kafka.publish("postsales.alerts.v1", [warning, critical])
        await eventually(lambda: runs(svc), timeout=60, message="the alert's play")
        await consumed(svc, warning, critical)
        [run] = await runs(svc)
        assert run["playbook_id"] == pid and run["trigger"]["event_id"] == critical.id
        [task] = (await svc.client.get("/v1/tasks", params={"owner": "tam.li@vendor.example"})).json()["items"]
        assert task["due_date"] == "2026-12-01" and task["playbook"]["name"] == "Escalated alert"


async def test_a_play_started_by_hand(service) -> None:
    async with service("lifecycle", **HTTP_ONLY) as svc:
        set_clock(svc, T0)
        await new_account(svc)
        c = svc.client
        url = f"/v1/playbooks/{RISK_DEFAULT}/runs"
        r = await c.post(url, json={"account_id": "acme"}, headers={"Idempotency-Key": "start-1"})
        assert r.status_code == 201, r.text
        run = r.json()
        assert run["status"] == "active" and len(run["task_ids"]) == 3 and run["trigger"]["event_type"] == "manual"
        replay = await c.post(url, json={"account_id": "acme"}, headers={"Idempotency-Key": "start-1"})
        assert replay.status_code == 201 and replay.json()["id"] == run["id"]
        assert_problem(await c.post(url, json={"account_id": "acme"}), 409)  # one active run
        assert_problem(await c.post(url, json={"account_id": "nobody"}), 404)
        assert_problem(await c.post(f"/v1/playbooks/{uuid.uuid4()}/runs", json={"account_id": "acme"}), 404)
        tasks = (await c.get("/v1/tasks", params={"owner": OWNER})).json()["items"]
        assert [t["due_date"] for t in tasks] == ["2026-12-03", "2026-12-08", "2026-12-15"]
        assert {t["playbook_run_id"] for t in tasks} == {run["id"]}
        assert len(await outbox_events(svc, "postsales.playbook.started")) == 1
        # By hand, the cooldown does not apply: a person decided.
        for t in tasks:
            r = await c.patch(f"/v1/accounts/acme/tasks/{t['id']}", json={"status": "done"})
            assert r.status_code == 200, r.text
        set_clock(svc, T0 + dt.timedelta(days=1))
        # The longest Idempotency-Key the API takes still fits the run's trigger id (PostgreSQL checks lengths).
        again = await c.post(url, json={"account_id": "acme"}, headers={"Idempotency-Key": "k" * 255})
        assert again.status_code == 201, again.text
        assert [r["status"] for r in await runs(svc)] == ["active", "completed"]
        await c.post("/v1/accounts/acme/transitions", json={"to": "churned"})
        assert [r["status"] for r in await runs(svc)] == ["cancelled", "completed"]
        assert_problem(await c.post(url, json={"account_id": "acme"}), 409)


# --- the worklist --------------------------------------------------------------------------------

async def test_worklist_orders_by_due_date_undated_last_and_pages(service) -> None:
    async with service("lifecycle", **HTTP_ONLY, postsales_api_keys={
            "test-admin-token-0123456789abcdef": ["admin"],
            "test-jane-token-0123456789abcdef": {"scopes": ["lifecycle:read"], "owner": OWNER},
            "test-nobody-token-0123456789abcd": ["lifecycle:read"]}) as svc:
        for account in ("a1", "a2", "a3"):
            await new_account(svc, account)
        due = ["2027-01-05", None, "2027-01-01", "2027-01-03", None, "2027-01-01"]
        ids = []
        for i, d in enumerate(due):
            body: dict[str, Any] = {"title": f"task {i}", "due_date": d}
            r = await svc.client.post(f"/v1/accounts/a{i % 3 + 1}/tasks", json=body)
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        r = await svc.client.post("/v1/accounts/a1/tasks", json={"title": "someone else's", "owner": "x@v.example",
                                                                  "due_date": "2026-01-01"})
        other = r.json()["id"]

        seen: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"owner": OWNER, "limit": 2}
            if cursor:
                params["cursor"] = cursor
            r = await svc.client.get("/v1/tasks", params=params)
            assert r.status_code == 200, r.text
            seen.extend(r.json()["items"])
            cursor = r.json()["next_cursor"]
            if cursor is None:
                break
        assert [t["due_date"] for t in seen] == ["2027-01-01", "2027-01-01", "2027-01-03", "2027-01-05", None, None]
        assert sorted(t["id"] for t in seen) == sorted(ids) and other not in {t["id"] for t in seen}
        assert all(t["playbook_run_id"] is None and t["playbook"] is None for t in seen)

        r = await svc.client.get("/v1/tasks", params={"owner": OWNER, "due_before": "2027-01-03"})
        assert [t["due_date"] for t in r.json()["items"]] == ["2027-01-01", "2027-01-01", "2027-01-03"]
        r = await svc.client.get("/v1/tasks", params={"account_id": "a2"})
        assert {t["account_id"] for t in r.json()["items"]} == {"a2"} and len(r.json()["items"]) == 2
        await svc.client.patch(f"/v1/accounts/a1/tasks/{ids[0]}", json={"status": "done"})
        r = await svc.client.get("/v1/tasks", params=[("owner", OWNER), ("status", "open"),
                                                      ("status", "in_progress")])
        assert ids[0] not in {t["id"] for t in r.json()["items"]} and len(r.json()["items"]) == 5
        set_clock(svc, dt.datetime(2027, 1, 4, tzinfo=dt.UTC))
        r = await svc.client.get("/v1/tasks", params={"owner": OWNER, "overdue": "true"})
        assert [t["due_date"] for t in r.json()["items"]] == ["2027-01-01", "2027-01-01", "2027-01-03"]
        assert all(t["overdue"] for t in r.json()["items"])

        async with svc.client_for("test-jane-token-0123456789abcdef") as jane:
            r = await jane.get("/v1/tasks", params={"owner": "me", "status": "open"})
            assert r.status_code == 200 and len(r.json()["items"]) == 5
        async with svc.client_for("test-nobody-token-0123456789abcd") as nobody:
            assert_problem(await nobody.get("/v1/tasks", params={"owner": "me"}), 422)
        assert_problem(await svc.client.get("/v1/tasks", params={"cursor": "garbage!"}), 422)
        assert_problem(await svc.client.get("/v1/tasks", params={"status": "finished"}), 422)
        assert_problem(await svc.client.get("/v1/tasks", params={"due_before": "tomorrow"}), 422)
