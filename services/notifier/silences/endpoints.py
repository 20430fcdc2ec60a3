"""HTTP API of silences."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from sqlalchemy import select

from services.notifier.dependencies import IdempotencyDep, ReadScope, SilenceDep, WriteScope
from services.notifier.models import Silence
from services.notifier.silences import service
from services.notifier.silences.schemas import SilenceIn, SilenceOut
from shared.app import SessionDep
from shared.db import utcnow
from shared.errors import problems
from shared.http import Cursor, Limit, Page, keyset_page

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
    stmt = select(Silence)
    now = utcnow()
    if status == "active":
        stmt = stmt.where(Silence.ends_at > now)
    elif status == "expired":
        stmt = stmt.where(Silence.ends_at <= now)
    rows, nxt = await keyset_page(session, stmt, order_by=[Silence.created_at, Silence.id],
                                  cursor=cursor, limit=limit)
    return Page[SilenceOut](items=[service.to_out(s) for s in rows], next_cursor=nxt)


@router.get("/{silence_id}", response_model=SilenceOut, responses=problems(404))
async def get_silence(silence: SilenceDep, _: ReadScope) -> SilenceOut:
    """Read one silence."""
    return service.to_out(silence)


@router.delete("/{silence_id}", status_code=204, responses=problems(404))
async def expire_silence(silence: SilenceDep, session: SessionDep, _: WriteScope) -> Response:
    """Expire a silence now (it stays listed as expired)."""
    await service.expire(session, silence)
    return Response(status_code=204)
