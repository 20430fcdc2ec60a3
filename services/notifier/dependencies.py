"""Shared dependencies of the notifier's routers: scopes, the secret box, validated ids."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path

from services.notifier.alerts import repository as alerts_repo
from services.notifier.alerts.service import Engine
from services.notifier.channels import repository as channels_repo
from services.notifier.context import NotifierContext
from services.notifier.crypto import SecretBox
from services.notifier.models import Alert, Channel, Rule, Silence, infra
from services.notifier.outbound import Resolver
from services.notifier.rules import repository as rules_repo
from services.notifier.settings import Settings
from services.notifier.silences import repository as silences_repo
from shared.app import SessionDep, get_ctx
from shared.app import SettingsDep as AppSettingsDep
from shared.auth import Principal, require
from shared.errors import NotFound
from shared.http import Idempotency, idempotency_dependency

ReadScope = Annotated[Principal, Depends(require("alerts:read"))]
WriteScope = Annotated[Principal, Depends(require("alerts:write"))]
IdempotencyDep = Annotated[Idempotency, idempotency_dependency(infra.idempotency_keys)]
NotifierContextDep = Annotated[NotifierContext, Depends(get_ctx)]


def get_box(ctx: NotifierContextDep) -> SecretBox:
    return ctx.extension.box


def get_resolver(ctx: NotifierContextDep) -> Resolver:
    return ctx.extension.resolver


def get_engine(ctx: NotifierContextDep) -> Engine:
    return ctx.extension.engine


BoxDep = Annotated[SecretBox, Depends(get_box)]
ResolverDep = Annotated[Resolver, Depends(get_resolver)]
EngineDep = Annotated[Engine, Depends(get_engine)]
SettingsDep = AppSettingsDep[Settings]


async def valid_channel(session: SessionDep, channel_id: Annotated[str, Path(max_length=36)], _: ReadScope) -> Channel:
    # Read access is checked first: a token without it learns nothing, not even whether the id exists.
    channel = await channels_repo.get(session, channel_id)
    if channel is None:
        raise NotFound(f"channel {channel_id} does not exist")
    return channel


async def valid_rule(session: SessionDep, rule_id: Annotated[str, Path(max_length=36)], _: ReadScope) -> Rule:
    rule = await rules_repo.get(session, rule_id)
    if rule is None:
        raise NotFound(f"rule {rule_id} does not exist")
    return rule


async def valid_alert(session: SessionDep, alert_id: Annotated[str, Path(max_length=36)], _: ReadScope) -> Alert:
    alert = await alerts_repo.get(session, alert_id)
    if alert is None:
        raise NotFound(f"alert {alert_id} does not exist")
    return alert


async def valid_silence(session: SessionDep, silence_id: Annotated[str, Path(max_length=36)], _: ReadScope) -> Silence:
    silence = await silences_repo.get(session, silence_id)
    if silence is None:
        raise NotFound(f"silence {silence_id} does not exist")
    return silence


ChannelDep = Annotated[Channel, Depends(valid_channel)]
RuleDep = Annotated[Rule, Depends(valid_rule)]
AlertDep = Annotated[Alert, Depends(valid_alert)]
SilenceDep = Annotated[Silence, Depends(valid_silence)]
