"""Silences: create (validated), expire, present."""

from __future__ import annotations

import re
import uuid
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier.models import Silence
from services.notifier.silences import repository
from services.notifier.silences.schemas import Matcher, SilenceIn, SilenceOut
from shared.db import utcnow
from shared.errors import Unprocessable
from shared.http import Page


async def list_page(session: AsyncSession, status: Literal["active", "expired"] | None, cursor: str | None,
                    limit: int) -> Page[SilenceOut]:
    rows, nxt = await repository.page(session, status=status, now=utcnow(), cursor=cursor, limit=limit)
    return Page[SilenceOut](items=[to_out(s) for s in rows], next_cursor=nxt)


def to_out(s: Silence) -> SilenceOut:
    now = utcnow()
    status = "expired" if s.ends_at <= now else ("pending" if s.starts_at > now else "active")
    return SilenceOut(id=s.id, matchers=[Matcher.model_validate(m) for m in s.matchers], created_by=s.created_by,
                      comment=s.comment, starts_at=s.starts_at, ends_at=s.ends_at, status=status,
                      created_at=s.created_at)


async def create(session: AsyncSession, body: SilenceIn) -> SilenceOut:
    now = utcnow()
    starts = body.starts_at or now
    errors: list[dict[str, Any]] = []
    if body.ends_at <= starts:
        errors.append({"loc": ["body", "ends_at"], "msg": "ends_at must be after starts_at"})
    elif body.ends_at <= now:
        errors.append({"loc": ["body", "ends_at"], "msg": "ends_at is in the past"})
    for i, m in enumerate(body.matchers):
        if m.is_regex:
            try:
                re.compile(m.value)
            except re.error as exc:
                errors.append({"loc": ["body", "matchers", i, "value"], "msg": f"invalid regular expression: {exc}"})
    if errors:
        raise Unprocessable("; ".join(str(e["msg"]) for e in errors), errors=errors)
    silence = Silence(id=str(uuid.uuid4()), matchers=[m.model_dump() for m in body.matchers],
                      created_by=body.created_by, comment=body.comment, starts_at=starts, ends_at=body.ends_at,
                      created_at=now)
    await repository.add(session, silence)
    return to_out(silence)


async def expire(session: AsyncSession, silence: Silence) -> None:
    now = utcnow()
    if silence.ends_at > now:
        silence.ends_at = max(now, silence.starts_at)
        await session.flush()
