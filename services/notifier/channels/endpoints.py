"""HTTP API of channels."""

from __future__ import annotations

from fastapi import APIRouter, Response

from services.notifier.channels import service
from services.notifier.channels.schemas import ChannelCreated, ChannelIn, ChannelOut, TestResult
from services.notifier.dependencies import (
    BoxDep,
    ChannelDep,
    IdempotencyDep,
    ReadScope,
    ResolverDep,
    SettingsDep,
    WriteScope,
)
from shared.app import SessionDep
from shared.errors import problems
from shared.http import Cursor, Limit, Page

router = APIRouter(prefix="/v1/channels", tags=["channels"])


@router.post("", status_code=201, response_model=ChannelCreated, responses=problems(409))
async def create_channel(body: ChannelIn, session: SessionDep, settings: SettingsDep, box: BoxDep,
                         resolver: ResolverDep, idem: IdempotencyDep, _: WriteScope) -> ChannelCreated:
    """Create a channel; a webhook's signing secret is returned in this response only."""
    await idem.check(session)
    created = await service.create(session, body, box, settings, resolver)
    # A replay must not hand the secret out again (nor keep it in the idempotency table).
    await idem.save(session, 201, created.model_copy(update={"secret": None}))
    return created


@router.get("", response_model=Page[ChannelOut])
async def list_channels(session: SessionDep, settings: SettingsDep, _: ReadScope, limit: Limit = 50,
                        cursor: Cursor = None) -> Page[ChannelOut]:
    """List channels, newest first (secrets are never shown)."""
    return await service.list_page(session, settings, cursor, limit)


@router.get("/{channel_id}", response_model=ChannelOut, responses=problems(404))
async def get_channel(channel: ChannelDep, settings: SettingsDep, _: ReadScope) -> ChannelOut:
    """Read one channel."""
    return service.to_out(channel, settings)


@router.delete("/{channel_id}", status_code=204, responses=problems(404, 409))
async def delete_channel(channel: ChannelDep, session: SessionDep, _: WriteScope) -> Response:
    """Delete a channel no rule uses; its undelivered notifications are marked dead."""
    await service.delete(session, channel)
    return Response(status_code=204)


@router.post("/{channel_id}/test", response_model=TestResult, responses=problems(404))
async def test_channel(channel: ChannelDep, settings: SettingsDep, box: BoxDep, resolver: ResolverDep,
                       _: WriteScope) -> TestResult:
    """Send a test message now and report how the target answered."""
    return await service.test_send(channel, box, settings, resolver)
