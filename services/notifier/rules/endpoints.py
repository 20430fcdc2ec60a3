"""HTTP API of rules."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import select

from services.notifier.alerts import repository as alerts_repo
from services.notifier.alerts.service import resolve
from services.notifier.dependencies import IdempotencyDep, ReadScope, RuleDep, WriteScope
from services.notifier.models import Rule
from services.notifier.rules import service
from services.notifier.rules.schemas import RuleIn, RuleOut
from services.notifier.scheduler import engine_of
from services.notifier.settings import Settings
from shared.app import ContextDep, SessionDep
from shared.db import utcnow
from shared.errors import problems
from shared.http import Cursor, Limit, Page, keyset_page

router = APIRouter(prefix="/v1/rules", tags=["rules"])


@router.post("", status_code=201, response_model=RuleOut, responses=problems(409))
async def create_rule(body: RuleIn, session: SessionDep, ctx: ContextDep, idem: IdempotencyDep,
                      _: WriteScope) -> RuleOut:
    """Create a rule; 422 when any part of it could not be evaluated."""
    await idem.check(session)
    out = await service.create(session, body, _settings(ctx))
    await idem.save(session, 201, out)
    return out


@router.get("", response_model=Page[RuleOut])
async def list_rules(session: SessionDep, _: ReadScope, limit: Limit = 50, cursor: Cursor = None) -> Page[RuleOut]:
    """List rules, newest first (the built-in default rules included)."""
    rows, nxt = await keyset_page(
        session, select(Rule), order_by=[Rule.created_at, Rule.id],
        cursor=cursor, limit=limit)
    return Page[RuleOut](items=[service.to_out(r) for r in rows], next_cursor=nxt)


@router.get("/{rule_id}", response_model=RuleOut, responses=problems(404))
async def get_rule(rule: RuleDep, _: ReadScope) -> RuleOut:
    """Read one rule."""
    return service.to_out(rule)


@router.put("/{rule_id}", response_model=RuleOut, responses=problems(404, 409))
async def replace_rule(rule: RuleDep, body: RuleIn, session: SessionDep, ctx: ContextDep,
                       _: WriteScope) -> RuleOut:
    """Replace a rule; its open alerts keep their fingerprint and follow the new settings."""
    return await service.replace(session, rule, body, _settings(ctx))


@router.delete("/{rule_id}", status_code=204, responses=problems(404))
async def delete_rule(rule: RuleDep, session: SessionDep, ctx: ContextDep, _: WriteScope) -> Response:
    """Delete a rule: its open alerts are resolved and other rules stop referring to it."""
    engine = engine_of(ctx)
    for alert in await alerts_repo.active_of_rules(session, [rule.id]):
        await resolve(session, engine, alert, by="system", reason="rule deleted")
    for other in (await session.execute(select(Rule).where(Rule.id != rule.id))).scalars().all():
        inhibits = other.inhibits or {}
        if rule.id in (inhibits.get("rules") or []):
            remaining = [r for r in inhibits["rules"] if r != rule.id]
            other.inhibits = {**inhibits, "rules": remaining} if remaining else None
            other.updated_at = utcnow()
    await session.delete(rule)
    await session.flush()
    return Response(status_code=204)


def _settings(ctx: ContextDep) -> Settings:
    assert isinstance(ctx.settings, Settings)
    return ctx.settings
