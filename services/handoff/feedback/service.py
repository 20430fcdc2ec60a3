"""Feedback from post-sales to presales on a handoff."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from services.handoff.feedback import repository as repo
from services.handoff.feedback.schemas import FeedbackIn, FeedbackOut
from services.handoff.models import Feedback, Handoff
from shared.db import utcnow


def to_out(f: Feedback, h: Handoff) -> FeedbackOut:
    return FeedbackOut(id=f.id, handoff_id=h.id, account_id=h.account_external_id,
                       crm_opportunity_id=h.crm_opportunity_id, presales_owner=h.presales_owner, author=f.author,
                       category=f.category, body=f.body, created_at=f.created_at)


async def add(session: AsyncSession, handoff: Handoff, body: FeedbackIn) -> FeedbackOut:
    f = Feedback(id=str(uuid.uuid4()), handoff_id=handoff.id, author=body.author.strip(), category=body.category,
                 body=body.body.strip(), created_at=utcnow())
    session.add(f)
    await session.flush()
    return to_out(f, handoff)


async def outs(session: AsyncSession, rows: Sequence[Feedback]) -> list[FeedbackOut]:
    handoffs = await repo.handoffs_by_id(session, [f.handoff_id for f in rows])
    return [to_out(f, handoffs[f.handoff_id]) for f in rows]
