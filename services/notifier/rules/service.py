"""Rules: validation on write (a stored rule can always be evaluated), create, replace, delete."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier.channels import repository as channels_repo
from services.notifier.models import Rule
from services.notifier.rules import repository
from services.notifier.rules.schemas import RuleIn, RuleOut
from services.notifier.settings import Settings
from services.notifier.templates import check_template
from shared.db import utcnow
from shared.errors import Conflict, Unprocessable
from shared.events.conditions import (
    RuleError,
    check_conditions,
    check_event_type,
    check_path,
    could_match_usage,
    parse_duration,
)


async def validate(session: AsyncSession, body: RuleIn, settings: Settings, rule_id: str | None = None) -> None:
    errors: list[dict[str, Any]] = []

    def err(loc: list[str | int], msg: str) -> None:
        errors.append({"loc": ["body", *loc], "msg": msg})

    def guard(loc: list[str | int], fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except RuleError as exc:
            err(exc.loc, exc.msg)
        except ValueError as exc:
            err(loc, str(exc))

    guard(["event_type"], check_event_type, body.event_type)
    if could_match_usage(body.event_type) and not settings.consume_usage:
        err(["event_type"], "usage events are not consumed by this deployment (NOTIFIER_CONSUME_USAGE=false)")
    guard(["conditions"], check_conditions, body.conditions, ["conditions"])
    for i, path in enumerate(body.group_by):
        guard(["group_by", i], check_path, path)
    guard(["group_wait"], parse_duration, body.group_wait)
    try:
        if parse_duration(body.repeat_interval) <= 0:
            err(["repeat_interval"], "repeat_interval must be longer than 0s")
    except ValueError as exc:
        err(["repeat_interval"], str(exc))
    missing = set(body.channels) - await channels_repo.existing_ids(session, body.channels)
    for i, cid in enumerate(body.channels):
        if cid in missing:
            err(["channels", i], f"channel {cid} does not exist")
    if len(set(body.channels)) != len(body.channels):
        err(["channels"], "a channel is listed twice")
    if body.escalation:
        guard(["escalation", "after"], parse_duration, body.escalation.after)
        if not await channels_repo.existing_ids(session, [body.escalation.channel]):
            err(["escalation", "channel"], f"channel {body.escalation.channel} does not exist")
    if body.resolve_when:
        guard(["resolve_when", "event_type"], check_event_type, body.resolve_when.event_type)
        guard(["resolve_when", "conditions"], check_conditions, body.resolve_when.conditions,
              ["resolve_when", "conditions"])
    if body.inhibits:
        targets = body.inhibits.rules
        found = await repository.existing_ids(session, targets)
        for i, rid in enumerate(targets):
            if rid == rule_id:
                err(["inhibits", "rules", i], "a rule cannot inhibit itself")
            elif rid not in found:
                err(["inhibits", "rules", i], f"rule {rid} does not exist")
        for i, path in enumerate(body.inhibits.equal):
            guard(["inhibits", "equal", i], check_path, path)
    for lang, source in (body.summary or {}).items():
        guard(["summary", lang], check_template, source)
    if errors:
        detail = "; ".join(f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in errors[:5])
        raise Unprocessable(detail, errors=errors)
    other = await repository.by_name(session, body.name)
    if other is not None and other.id != rule_id:
        raise Conflict(f"a rule named '{body.name}' already exists")


def _fields(body: RuleIn) -> dict[str, Any]:
    data = body.model_dump(mode="json")
    return {k: data[k] for k in (
        "name", "description", "event_type", "conditions", "severity", "channels", "group_by", "group_wait",
        "repeat_interval", "escalation", "resolve_when", "inhibits", "lang", "summary", "enabled")}


def to_out(rule: Rule) -> RuleOut:
    return RuleOut.model_validate(rule, from_attributes=True)


async def create(session: AsyncSession, body: RuleIn, settings: Settings) -> RuleOut:
    await validate(session, body, settings)
    now = utcnow()
    rule = Rule(id=str(uuid.uuid4()), builtin=False, created_at=now, updated_at=now, **_fields(body))
    session.add(rule)
    await session.flush()
    return to_out(rule)


async def replace(session: AsyncSession, rule: Rule, body: RuleIn, settings: Settings) -> RuleOut:
    await validate(session, body, settings, rule_id=rule.id)
    for key, value in _fields(body).items():
        setattr(rule, key, value)
    rule.updated_at = utcnow()
    await session.flush()
    return to_out(rule)
