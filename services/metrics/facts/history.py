"""The fact history: each account fact as it arrived, with when it happened (see ``FactHistory``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics.db import upsert
from services.metrics.models import FactHistory


async def record(session: AsyncSession, *, event_id: str, account_id: str, kind: str, at: dt.datetime,
                 data: dict[str, Any]) -> None:
    """Append a fact (once per event id: a redelivered event adds nothing)."""
    t = FactHistory.__table__
    clean = {k: v for k, v in to_jsonable_python(data).items() if v is not None}
    await session.execute(upsert(session, t).on_conflict_do_nothing(index_elements=[t.c.event_id]),
                          [{"event_id": event_id[:200], "account_id": account_id, "kind": kind,
                            "at": at.astimezone(dt.UTC), "data": clean}])
