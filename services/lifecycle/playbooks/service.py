"""Playbooks: validation on write (a stored playbook can always be evaluated), create, replace,
delete, and the stats that say whether a play works."""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.lifecycle.consumers import CONSUMED_TOPICS
from services.lifecycle.models import Playbook, PlaybookRun
from services.lifecycle.playbooks import repository as repo
from services.lifecycle.playbooks.schemas import (
    BandShift,
    PlaybookIn,
    PlaybookOut,
    PlaybookReplace,
    PlaybookRunOut,
    PlaybookStats,
)
from shared.db import utcnow
from shared.errors import Conflict, Unprocessable
from shared.events.conditions import RuleError, check_conditions, check_event_type, parse_duration, type_matches
from shared.events.registry import EVENT_TYPES

# A playbook can only be started by events on the topics the service reads.
READABLE_TYPES = [name for name, et in EVENT_TYPES.items() if et.topic in CONSUMED_TOPICS]

# Better is higher.
_HEALTH_RANK = {"red": 0, "yellow": 1, "green": 2}
_RISK_RANK = {"high": 0, "medium": 1, "low": 2}


def validate(body: PlaybookIn) -> None:
    """Raise 422 with one `{loc, msg}` per problem in the playbook."""
    errors: list[dict[str, Any]] = []

    def err(loc: list[str | int], msg: str) -> None:
        errors.append({"loc": ["body", *loc], "msg": msg})

    pattern = body.trigger.event_type
    try:
        check_event_type(pattern)
    except ValueError as exc:
        err(["trigger", "event_type"], str(exc))
    else:
        if not any(type_matches(pattern, t) for t in READABLE_TYPES):
            err(["trigger", "event_type"],
                f"'{pattern}' matches no event the lifecycle service reads (it does not read usage events); "
                f"known types: {', '.join(READABLE_TYPES)}")
    try:
        check_conditions(body.trigger.conditions, ["trigger", "conditions"])
    except RuleError as exc:
        err(exc.loc, exc.msg)
    try:
        parse_duration(body.cooldown)
    except ValueError as exc:
        err(["cooldown"], str(exc))
    if errors:
        detail = "; ".join(f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in errors[:5])
        raise Unprocessable(detail, errors=errors)


def _fields(body: PlaybookIn) -> dict[str, Any]:
    tasks = [t.model_dump(mode="json") for t in body.tasks]
    return {"name": body.name, "description": body.description, "event_type": body.trigger.event_type,
            "conditions": body.trigger.conditions, "tasks": tasks, "cooldown": body.cooldown.strip(),
            "enabled": body.enabled}


def to_out(playbook: Playbook) -> PlaybookOut:
    return PlaybookOut(
        id=playbook.id, name=playbook.name, description=playbook.description,
        trigger={"event_type": playbook.event_type, "conditions": playbook.conditions},
        tasks=playbook.tasks, cooldown=playbook.cooldown, enabled=playbook.enabled, builtin=playbook.builtin,
        created_at=playbook.created_at, updated_at=playbook.updated_at,
    )


async def _unique_name(session: AsyncSession, name: str, playbook_id: str | None) -> None:
    other = await repo.by_name(session, name)
    if other is not None and other.id != playbook_id:
        raise Conflict(f"a playbook named '{name}' already exists", playbook_id=other.id)


async def create(session: AsyncSession, body: PlaybookIn) -> PlaybookOut:
    validate(body)
    await _unique_name(session, body.name, None)
    now = utcnow()
    playbook = Playbook(id=str(uuid.uuid4()), builtin=False, created_at=now, updated_at=now, **_fields(body))
    session.add(playbook)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise Conflict(f"a playbook named '{body.name}' already exists") from None
    return to_out(playbook)


async def replace(session: AsyncSession, playbook: Playbook, body: PlaybookReplace) -> PlaybookOut:
    if body.id is not None and body.id != playbook.id:
        raise Unprocessable("id does not match the playbook in the path",
                            errors=[{"loc": ["body", "id"], "msg": f"must be {playbook.id} (or left out)"}])
    validate(body)
    await _unique_name(session, body.name, playbook.id)
    for key, value in _fields(body).items():
        setattr(playbook, key, value)
    playbook.updated_at = utcnow()
    await session.flush()
    return to_out(playbook)


async def delete(session: AsyncSession, playbook: Playbook) -> None:
    """Delete the playbook. Its runs stay as history (with the playbook's name); active ones go on
    until their tasks are done, since those tasks are already on people's lists."""
    await session.delete(playbook)
    await session.flush()


def run_out(run: PlaybookRun) -> PlaybookRunOut:
    return PlaybookRunOut(
        id=run.id, playbook_id=run.playbook_id, playbook_name=run.playbook_name, account_id=run.account_id,
        status=run.status, task_ids=list(run.task_ids),
        trigger={"event_id": run.trigger_event_id, "event_type": run.trigger_event_type,
                 "source": run.trigger_source, "time": run.trigger_time},
        started_at=run.started_at, ended_at=run.ended_at,
        health_band_start=run.health_band_start, health_band_end=run.health_band_end,
        risk_band_start=run.risk_band_start, risk_band_end=run.risk_band_end,
    )


def _shift(pairs: Sequence[tuple[str | None, str | None]], rank: dict[str, int]) -> BandShift:
    improved = unchanged = worsened = unknown = 0
    for start, end in pairs:
        if start not in rank or end not in rank:
            unknown += 1
        elif rank[end] > rank[start]:
            improved += 1
        elif rank[end] < rank[start]:
            worsened += 1
        else:
            unchanged += 1
    return BandShift(improved=improved, unchanged=unchanged, worsened=worsened, unknown=unknown)


def stats_of(playbook_id: str, rows: Sequence[Any]) -> PlaybookStats:
    by_status = {"active": 0, "completed": 0, "cancelled": 0}
    days: list[float] = []
    ended = []
    for row in rows:
        by_status[row.status] = by_status.get(row.status, 0) + 1
        if row.status == "completed" and row.ended_at is not None:
            started, finished = row.started_at, row.ended_at
            days.append(max(0.0, (finished - started).total_seconds() / 86400))
        if row.status != "active":
            ended.append(row)
    return PlaybookStats(
        playbook_id=playbook_id, runs=len(rows), active=by_status["active"], completed=by_status["completed"],
        cancelled=by_status["cancelled"],
        median_days_to_complete=round(statistics.median(days), 2) if days else None,
        health=_shift([(r.health_band_start, r.health_band_end) for r in ended], _HEALTH_RANK),
        risk=_shift([(r.risk_band_start, r.risk_band_end) for r in ended], _RISK_RANK),
    )


async def stats(session: AsyncSession, playbook: Playbook) -> PlaybookStats:
    return stats_of(playbook.id, await repo.run_outcomes(session, playbook.id))
