"""Scheduled work, safe with several replicas: renewal windows and overdue-task notices.

Exactly once per (account, renewal date, window) and per task due date: the ledger row (or the
task's notice stamp) is written in the same transaction as the outbox event, with an insert that
does nothing on conflict (a conditional update for tasks), so a second pass or replica finds the
work done; on PostgreSQL candidate rows are also claimed FOR UPDATE SKIP LOCKED so replicas split it.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.lifecycle import clock
from services.lifecycle.context import LifecycleContext
from services.lifecycle.events import emit
from services.lifecycle.renewals import repository as renewals_repo
from services.lifecycle.tasks import repository as tasks_repo
from services.lifecycle.tasks.service import task_payload
from shared.app import Periodic

log = logging.getLogger("postsales.lifecycle.scheduler")


@dataclass(frozen=True)
class PassResult:
    windows_fired: int
    overdue_notified: int


async def fire_renewal_windows(factory: async_sessionmaker[AsyncSession], *, windows: list[int],
                               batch_size: int, now: dt.datetime) -> int:
    today = now.date()
    total = 0
    while True:
        fired_now = 0
        async with factory() as session, session.begin():
            accounts = await renewals_repo.accounts_with_due_windows(session, today=today, windows=windows,
                                                                     limit=batch_size)
            done = await renewals_repo.fired_windows(session, accounts)
            for account in accounts:
                renewal_date = account.renewal_date
                assert renewal_date is not None
                days_left = (renewal_date - today).days
                # Widest first, so that per-account order on the topic is 120, 90, 60, 30.
                for window in sorted(windows, reverse=True):
                    if days_left > window or (account.id, renewal_date, window) in done:
                        continue
                    if not await renewals_repo.claim_window(session, account_id=account.id,
                                                            renewal_date=renewal_date, window_days=window, at=now):
                        continue
                    await emit(session, type="renewal.window_entered", account_id=account.id, at=now,
                               summary=f"Renewal window {window}d entered (renews {renewal_date}, "
                                       f"{days_left} days left)",
                               data={"renewal_date": renewal_date, "window_days": window, "days_left": days_left,
                                     "arr": account.arr, "currency": account.currency, "owner": account.owner,
                                     "stage": account.stage})
                    fired_now += 1
        total += fired_now
        if len(accounts) < batch_size or fired_now == 0:
            return total


async def notify_overdue_tasks(factory: async_sessionmaker[AsyncSession], *, batch_size: int,
                               now: dt.datetime) -> int:
    today = now.date()
    total = 0
    while True:
        notified = 0
        async with factory() as session, session.begin():
            tasks = await tasks_repo.due_for_overdue_notice(session, today=today, limit=batch_size)
            for task in tasks:
                if not await tasks_repo.claim_overdue_notice(session, task.id, now):
                    continue
                assert task.due_date is not None
                days = (today - task.due_date).days
                await emit(session, type="task.overdue", account_id=task.account_id, at=now,
                           summary=f"Task overdue by {days} day(s): {task.title}",
                           data={**task_payload(task), "days_overdue": days})
                notified += 1
        total += notified
        if len(tasks) < batch_size or notified == 0:
            return total


async def run_pass(ctx: LifecycleContext) -> PassResult:
    """One scheduler pass at the service clock's current time."""
    settings = ctx.settings
    now = clock.now(ctx)
    windows = await fire_renewal_windows(ctx.session_factory, windows=settings.renewal_windows,
                                         batch_size=settings.scheduler_batch_size, now=now)
    overdue = await notify_overdue_tasks(ctx.session_factory, batch_size=settings.scheduler_batch_size, now=now)
    if windows or overdue:
        log.info("scheduler: %d renewal window(s), %d overdue task(s)", windows, overdue)
        ctx.publish_soon()
    return PassResult(windows_fired=windows, overdue_notified=overdue)


LOOPS = [Periodic("scheduler", every="scheduler_interval", enabled="run_scheduler", run=run_pass)]
