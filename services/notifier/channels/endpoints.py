"""HTTP API of channels."""

from __future__ import annotations

import httpx
from fastapi import APIRouter, Response
from sqlalchemy import select

from services.notifier.channels import service
from services.notifier.channels.schemas import ChannelCreated, ChannelIn, ChannelOut, TestResult
from services.notifier.dependencies import BoxDep, ChannelDep, IdempotencyDep, ReadScope, WriteScope
from services.notifier.models import Channel
from services.notifier.settings import Settings
from shared.app import ContextDep, SessionDep
from shared.errors import problems
from shared.http import Cursor, Limit, Page, keyset_page

router = APIRouter(prefix="/v1/channels", tags=["channels"])


@router.post("", status_code=201, response_model=ChannelCreated, responses=problems(409))
async def create_channel(body: ChannelIn, session: SessionDep, ctx: ContextDep, box: BoxDep,
                         idem: IdempotencyDep, _: WriteScope) -> ChannelCreated:
    """Create a channel; a webhook's signing secret is returned in this response only."""
    await idem.check(session)
    created = await service.create(session, body, box, _settings(ctx))
    # A replay must not hand the secret out again (nor keep it in the idempotency table).
    await idem.save(session, 201, created.model_copy(update={"secret": None}))
    return created


@router.get("", response_model=Page[ChannelOut])
async def list_channels(session: SessionDep, ctx: ContextDep, _: ReadScope, limit: Limit = 50,
                        cursor: Cursor = None) -> Page[ChannelOut]:
    """List channels, newest first (secrets are never shown)."""
    rows, nxt = await keyset_page(
        session, select(Channel), order_by=[Channel.created_at, Channel.id],
        cursor=cursor, limit=limit)
    return Page[ChannelOut](items=[service.to_out(c, _settings(ctx)) for c in rows], next_cursor=nxt)


@router.get("/{channel_id}", response_model=ChannelOut, responses=problems(404))
async def get_channel(channel: ChannelDep, ctx: ContextDep, _: ReadScope) -> ChannelOut:
    """Read one channel."""
    return service.to_out(channel, _settings(ctx))


@router.delete("/{channel_id}", status_code=204, responses=problems(404, 409))
async def delete_channel(channel: ChannelDep, session: SessionDep, _: WriteScope) -> Response:
    """Delete a channel no rule uses; its undelivered notifications are marked dead."""
    await service.delete(session, channel)
    return Response(status_code=204)


@router.post("/{channel_id}/test", response_model=TestResult, responses=problems(404))
async def test_channel(channel: ChannelDep, ctx: ContextDep, box: BoxDep, _: WriteScope) -> TestResult:
    """Send a test message now and report how the target answered."""
    async with httpx.AsyncClient() as client:
        return await service.test_send(channel, box, _settings(ctx), client)


def _settings(ctx: ContextDep) -> Settings:
    assert isinstance(ctx.settings, Settings)
    return ctx.settings
