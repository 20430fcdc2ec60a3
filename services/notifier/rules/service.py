"""Rules: validation on write (a stored rule can always be evaluated), create, replace, delete."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier.alerts import repository as alerts_repo
from services.notifier.alerts.service import Engine, resolve
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
from shared.http import Page


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
    resolvers = body.resolve_when if isinstance(body.resolve_when, list) else \
        [body.resolve_when] if body.resolve_when else []
    for i, rw in enumerate(resolvers):
        where: list[str | int] = ["resolve_when", i] if isinstance(body.resolve_when, list) else ["resolve_when"]
        guard([*where, "event_type"], check_event_type, rw.event_type)
        guard([*where, "conditions"], check_conditions, rw.conditions, [*where, "conditions"])
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


NO_CHANNEL = ("no channel: this rule names no channels and no channel is flagged default, so its alerts are "
              "recorded and published on postsales.alerts.v1 but notify no one; create a channel with "
              "\"default\": true, or list channel ids in `channels`")


def warnings_of(rule: Rule, have_default_channel: bool) -> list[str]:
    out: list[str] = []
    if not rule.channels and not have_default_channel:
        out.append(NO_CHANNEL)
    if not rule.enabled:
        out.append("disabled: events are not evaluated against this rule")
    return out


def to_out(rule: Rule, have_default_channel: bool) -> RuleOut:
    warnings = warnings_of(rule, have_default_channel)
    out = RuleOut.model_validate(rule, from_attributes=True)
    out.warnings = warnings
    out.deliverable = rule.enabled and (bool(rule.channels) or have_default_channel)
    return out


async def read(session: AsyncSession, rule: Rule) -> RuleOut:
    return to_out(rule, bool(await channels_repo.defaults(session)))


async def list_page(session: AsyncSession, cursor: str | None, limit: int) -> Page[RuleOut]:
    rows, nxt = await repository.page(session, cursor=cursor, limit=limit)
    have_default = bool(await channels_repo.defaults(session))
    return Page[RuleOut](items=[to_out(r, have_default) for r in rows], next_cursor=nxt)


async def create(session: AsyncSession, body: RuleIn, settings: Settings) -> RuleOut:
    await validate(session, body, settings)
    now = utcnow()
    rule = Rule(id=str(uuid.uuid4()), builtin=False, created_at=now, updated_at=now, **_fields(body))
    await repository.add(session, rule)
    return await read(session, rule)


async def replace(session: AsyncSession, rule: Rule, body: RuleIn, settings: Settings) -> RuleOut:
    await validate(session, body, settings, rule_id=rule.id)
    for key, value in _fields(body).items():
        setattr(rule, key, value)
    rule.updated_at = utcnow()
    await session.flush()
    return await read(session, rule)


async def delete(session: AsyncSession, engine: Engine, rule: Rule) -> None:
    """Delete a rule: its open alerts are resolved and other rules stop inhibiting through it."""
    for alert in await alerts_repo.active_of_rules(session, [rule.id]):
        await resolve(session, engine, alert, by="system", reason="rule deleted")
    for other in await repository.inhibitors_of_any(session):
        inhibits = other.inhibits or {}
        if other.id != rule.id and rule.id in (inhibits.get("rules") or []):
            remaining = [r for r in inhibits["rules"] if r != rule.id]
            other.inhibits = {**inhibits, "rules": remaining} if remaining else None
            other.updated_at = utcnow()
    await repository.delete(session, rule)
