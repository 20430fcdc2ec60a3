"""HTTP API of rules."""

from __future__ import annotations

from fastapi import APIRouter, Response

from services.notifier.dependencies import (
    EngineDep,
    IdempotencyDep,
    ReadScope,
    RuleDep,
    SettingsDep,
    WriteScope,
)
from services.notifier.rules import service
from services.notifier.rules.schemas import RuleIn, RuleOut, RuleReplace
from shared.app import SessionDep
from shared.errors import problems
from shared.http import Cursor, Limit, Page

router = APIRouter(prefix="/v1/rules", tags=["rules"])


@router.post("", status_code=201, response_model=RuleOut, responses=problems(409))
async def create_rule(body: RuleIn, session: SessionDep, settings: SettingsDep, idem: IdempotencyDep,
                      _: WriteScope) -> RuleOut:
    """Create a rule; 422 when any part of it could not be evaluated (an unknown event type names the known ones)."""
    await idem.check(session)
    out = await service.create(session, body, settings)
    await idem.save(session, 201, out)
    return out


@router.get("", response_model=Page[RuleOut])
async def list_rules(session: SessionDep, _: ReadScope, limit: Limit = 50, cursor: Cursor = None) -> Page[RuleOut]:
    """List rules, newest first (the built-in ones included); `warnings` says when a rule notifies no one."""
    return await service.list_page(session, cursor, limit)


@router.get("/{rule_id}", response_model=RuleOut, responses=problems(404))
async def get_rule(rule: RuleDep, session: SessionDep, _: ReadScope) -> RuleOut:
    """Read one rule."""
    return await service.read(session, rule)


@router.put("/{rule_id}", response_model=RuleOut, responses=problems(404, 409))
async def replace_rule(rule: RuleDep, body: RuleReplace, session: SessionDep, settings: SettingsDep,
                       _: WriteScope) -> RuleOut:
    """Replace a rule (a rule as GET returns it is accepted); its open alerts keep their fingerprint."""
    return await service.replace(session, rule, body, settings)


@router.delete("/{rule_id}", status_code=204, responses=problems(404))
async def delete_rule(rule: RuleDep, session: SessionDep, engine: EngineDep, _: WriteScope) -> Response:
    """Delete a rule: its open alerts are resolved and other rules stop referring to it."""
    await service.delete(session, engine, rule)
    return Response(status_code=204)
