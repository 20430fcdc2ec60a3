"""HTTP API of silences."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from services.notifier.dependencies import IdempotencyDep, ReadScope, SilenceDep, WriteScope
from services.notifier.silences import service
from services.notifier.silences.schemas import SilenceIn, SilenceOut
from shared.app import SessionDep
from shared.errors import problems
from shared.http import Cursor, Limit, Page

router = APIRouter(prefix="/v1/silences", tags=["silences"])


@router.post("", status_code=201, response_model=SilenceOut)
async def create_silence(body: SilenceIn, session: SessionDep, idem: IdempotencyDep, _: WriteScope) -> SilenceOut:
    """Mute notifications of alerts whose labels match every matcher, until `ends_at`."""
    await idem.check(session)
    out = await service.create(session, body)
    await idem.save(session, 201, out)
    return out


@router.get("", response_model=Page[SilenceOut])
async def list_silences(
    session: SessionDep, _: ReadScope,
    status: Annotated[Literal["active", "expired"] | None, Query(description="Filter by state.")] = None,
    limit: Limit = 50, cursor: Cursor = None,
) -> Page[SilenceOut]:
    """List silences, newest first."""
    return await service.list_page(session, status, cursor, limit)


@router.get("/{silence_id}", response_model=SilenceOut, responses=problems(404))
async def get_silence(silence: SilenceDep, _: ReadScope) -> SilenceOut:
    """Read one silence."""
    return service.to_out(silence)


@router.delete("/{silence_id}", status_code=204, responses=problems(404))
async def expire_silence(silence: SilenceDep, session: SessionDep, _: WriteScope) -> Response:
    """Expire a silence now (it stays listed as expired)."""
    await service.expire(session, silence)
    return Response(status_code=204)
