"""Playbook runs: an event starts one, its tasks finishing completes it, a churn cancels it.

Exactly once in effect: the consumer drops redelivered events by id, and a run is also unique per
(playbook, trigger event), so the same trigger can never start two runs. At most one run per playbook
and account is active: the run's ``active_key`` is unique and set only while it is active. The account
row is locked (PostgreSQL) while its runs are decided, so the cooldown check and the insert cannot
interleave with another consumer's for the same account.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.lifecycle.accounts import repository as accounts_repo
from services.lifecycle.events import emit
from services.lifecycle.models import Account, AccountHealth, Playbook, PlaybookRun, Task
from services.lifecycle.playbooks import repository as repo
from services.lifecycle.playbooks.schemas import ACCOUNT_OWNER
from shared.db import utcnow
from shared.errors import Conflict, NotFound
from shared.events import CloudEvent
from shared.events.conditions import conditions_hold, event_context, parse_duration, type_matches

log = logging.getLogger("postsales.lifecycle.playbooks")

ENDED_TASK_STATUSES = ("done", "cancelled")


MANUAL_SOURCE = "/manual"
MANUAL_TYPE = "manual"


@dataclass(frozen=True)
class TriggerRef:
    """What started a run: an event (by source, id, type and time), or a person (``MANUAL_TYPE``)."""

    source: str
    id: str
    type: str
    time: dt.datetime

    @classmethod
    def of(cls, event: CloudEvent) -> TriggerRef:
        return cls(source=event.source, id=event.id, type=event.type, time=event.time)


def account_document(account: Account, health: AccountHealth | None) -> dict[str, Any]:
    """The account as conditions see it (`account.stage`, `account.health_band`, ...)."""
    return {"id": account.id, "name": account.name, "owner": account.owner, "stage": account.stage,
            "health_band": health.band if health else None, "health_score": health.score if health else None}


async def _bands(session: AsyncSession, account: Account) -> tuple[str | None, str | None]:
    """The account's current health band and churn-risk band (as lifecycle's copies know them)."""
    health = await accounts_repo.get_health(session, account.id)
    # Read without a lock: the risk consumer locks that row before the account, we hold the account.
    return (health.band if health else None), await repo.risk_band(session, account.id)


def _key(playbook_id: str, account_id: str) -> str:
    return f"{playbook_id}:{account_id}"


def _payload(run: PlaybookRun) -> dict[str, Any]:
    return {"playbook_id": run.playbook_id, "run_id": run.id, "playbook": run.playbook_name,
            "status": run.status, "task_ids": list(run.task_ids), "trigger_event_id": run.trigger_event_id,
            "trigger_event_type": run.trigger_event_type, "started_at": run.started_at,
            "ended_at": run.ended_at, "health_band_start": run.health_band_start,
            "health_band_end": run.health_band_end, "risk_band_start": run.risk_band_start,
            "risk_band_end": run.risk_band_end}


async def on_event(session: AsyncSession, event: CloudEvent, *, now: dt.datetime, max_age: dt.timedelta) -> int:
    """Start a run of every enabled playbook the event matches on its account; the number started."""
    if event.time < now - max_age:
        return 0  # history being imported, or a consumer far behind: nobody is paged for old news
    playbooks = [p for p in await repo.enabled(session) if type_matches(p.event_type, event.type)]
    if not playbooks or not event.subject:
        return 0
    account = await accounts_repo.get(session, event.subject, lock=True)
    if account is None or account.stage == "churned":
        return 0
    health = await accounts_repo.get_health(session, account.id)
    doc = event_context(event, account_document(account, health))
    started = 0
    for playbook in playbooks:
        if conditions_hold(playbook.conditions, doc) and await start(session, playbook, account, TriggerRef.of(event)):
            started += 1
    return started


async def start(session: AsyncSession, playbook: Playbook, account: Account, event: TriggerRef, *,
                actor: str | None = None) -> PlaybookRun | None:
    """Start ``playbook`` on ``account`` for ``event``, or None when a rule says not now (this trigger
    already started one, a run is active, or the cooldown since the last one has not passed)."""
    if await repo.run_for_trigger(session, playbook.id, event.source, event.id) is not None:
        return None
    if await repo.active_run(session, playbook.id, account.id) is not None:
        return None
    last_end = await repo.last_ended_at(session, playbook.id, account.id)
    cooldown = dt.timedelta(seconds=parse_duration(playbook.cooldown))
    if event.type != MANUAL_TYPE and last_end is not None and event.time < last_end + cooldown:
        return None
    health_band, risk_band = await _bands(session, account)
    started_at = event.time
    ts = utcnow()
    run = PlaybookRun(
        id=str(uuid.uuid4()), playbook_id=playbook.id, playbook_name=playbook.name, account_id=account.id,
        status="active", active_key=_key(playbook.id, account.id), task_ids=[], trigger_source=event.source,
        trigger_event_id=event.id, trigger_event_type=event.type, trigger_time=event.time, started_at=started_at,
        ended_at=None, health_band_start=health_band, risk_band_start=risk_band, created_at=ts, updated_at=ts,
    )
    try:
        # A savepoint: losing a race on a unique key (another replica, the same trigger) undoes only this run.
        async with session.begin_nested():
            session.add(run)
            await session.flush()
            tasks = []
            for spec in playbook.tasks:
                owner = spec.get("owner") or ACCOUNT_OWNER
                due_in = spec.get("due_in_days")
                tasks.append(Task(
                    id=str(uuid.uuid4()), account_id=account.id, kind="playbook", title=spec["title"],
                    description=spec.get("description"), status="open",
                    owner=account.owner if owner == ACCOUNT_OWNER else owner,
                    due_date=started_at.date() + dt.timedelta(days=due_in) if due_in is not None else None,
                    playbook_run_id=run.id, created_at=ts, updated_at=ts))
            session.add_all(tasks)
            run.task_ids = [t.id for t in tasks]
            await session.flush()
            by = f"{actor} (by hand)" if event.type == MANUAL_TYPE else event.type
            await emit(session, type="playbook.started", account_id=account.id, at=started_at, actor=actor,
                       summary=f"Playbook '{playbook.name}' started ({len(tasks)} task(s)) by {by}",
                       data=_payload(run))
    except IntegrityError:
        log.info("playbook %s on %s: lost a race for %s; nothing started", playbook.id, account.id, event.id)
        return None
    return run


async def _end(session: AsyncSession, run: PlaybookRun, account: Account, *, status: str, now: dt.datetime,
               actor: str | None, summary: str) -> None:
    health_band, risk_band = await _bands(session, account)
    run.status = status
    run.active_key = None
    run.ended_at = max(now, run.started_at)
    run.health_band_end, run.risk_band_end = health_band, risk_band
    run.updated_at = utcnow()
    await session.flush()
    await emit(session, type="playbook.completed", account_id=run.account_id, at=run.ended_at, actor=actor,
               summary=summary, data=_payload(run))


async def task_ended(session: AsyncSession, account: Account, task: Task, *, now: dt.datetime,
                     actor: str | None) -> bool:
    """After ``task`` went done or cancelled: complete its run when every task of it has ended (once)."""
    if task.playbook_run_id is None:
        return False
    run = await repo.get_run(session, task.playbook_run_id, lock=True)
    if run is None or run.status != "active":
        return False
    tasks = await repo.tasks_of_run(session, run.id)
    if any(t.status not in ENDED_TASK_STATUSES for t in tasks):
        return False
    await _end(session, run, account, status="completed", now=now, actor=actor,
               summary=f"Playbook '{run.playbook_name}' completed")
    return True


async def cancel_for_account(session: AsyncSession, account: Account, *, now: dt.datetime, actor: str | None,
                             reason: str) -> int:
    """Cancel the account's active runs and their open tasks (e.g. it churned); the number cancelled."""
    runs = await repo.active_runs_of_account(session, account.id)
    for run in runs:
        for task in await repo.tasks_of_run(session, run.id):
            if task.status not in ENDED_TASK_STATUSES:
                task.status = "cancelled"
                task.updated_at = utcnow()
        await _end(session, run, account, status="cancelled", now=now, actor=actor,
                   summary=f"Playbook '{run.playbook_name}' cancelled: {reason}")
    return len(runs)



async def start_by_hand(session: AsyncSession, playbook: Playbook, account_id: str, *, key: str,
                        now: dt.datetime, actor: str) -> PlaybookRun:
    """A person starts the play on the account (whatever its trigger and cooldown); 409 while a run of
    it is active there. ``key`` (the request's Idempotency-Key, else a fresh id) identifies the trigger."""
    account = await accounts_repo.get(session, account_id, lock=True)
    if account is None:
        raise NotFound(f"account {account_id} does not exist")
    if account.stage == "churned":
        raise Conflict(f"account {account.id} is churned; no playbook can start on it")
    active = await repo.active_run(session, playbook.id, account.id)
    if active is not None:
        raise Conflict(f"playbook '{playbook.name}' already has an active run on account {account.id}",
                       run_id=active.id)
    run = await start(session, playbook, account, TriggerRef(source=MANUAL_SOURCE, id=key, type=MANUAL_TYPE,
                                                             time=now), actor=actor)
    if run is None:
        raise Conflict(f"playbook '{playbook.name}' could not start on account {account.id} (started concurrently)")
    return run
