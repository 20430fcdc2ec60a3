"""Shared dependencies of the notifier's routers: scopes, the secret box, validated ids."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path

from services.notifier.context import NotifierContext
from services.notifier.crypto import SecretBox
from services.notifier.models import Alert, Channel, Rule, Silence, infra
from shared.app import SessionDep, get_ctx
from shared.auth import Principal, require
from shared.errors import NotFound
from shared.http import Idempotency, idempotency_dependency

ReadScope = Annotated[Principal, Depends(require("alerts:read"))]
WriteScope = Annotated[Principal, Depends(require("alerts:write"))]
IdempotencyDep = Annotated[Idempotency, idempotency_dependency(infra.idempotency_keys)]
NotifierContextDep = Annotated[NotifierContext, Depends(get_ctx)]


def get_box(ctx: NotifierContextDep) -> SecretBox:
    return ctx.extension.box


BoxDep = Annotated[SecretBox, Depends(get_box)]


async def valid_channel(session: SessionDep, channel_id: Annotated[str, Path(max_length=36)], _: ReadScope) -> Channel:
    # Read access is checked first: a token without it learns nothing, not even whether the id exists.
    channel = await session.get(Channel, channel_id)
    if channel is None:
        raise NotFound(f"channel {channel_id} does not exist")
    return channel


async def valid_rule(session: SessionDep, rule_id: Annotated[str, Path(max_length=36)], _: ReadScope) -> Rule:
    rule = await session.get(Rule, rule_id)
    if rule is None:
        raise NotFound(f"rule {rule_id} does not exist")
    return rule


async def valid_alert(session: SessionDep, alert_id: Annotated[str, Path(max_length=36)], _: ReadScope) -> Alert:
    alert = await session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"alert {alert_id} does not exist")
    return alert


async def valid_silence(session: SessionDep, silence_id: Annotated[str, Path(max_length=36)], _: ReadScope) -> Silence:
    silence = await session.get(Silence, silence_id)
    if silence is None:
        raise NotFound(f"silence {silence_id} does not exist")
    return silence


ChannelDep = Annotated[Channel, Depends(valid_channel)]
RuleDep = Annotated[Rule, Depends(valid_rule)]
AlertDep = Annotated[Alert, Depends(valid_alert)]
SilenceDep = Annotated[Silence, Depends(valid_silence)]
