from __future__ import annotations

from typing import Any

from sqlalchemy import select

from shared.testing import RunningService


async def rows(svc: RunningService, model: Any, *order: Any) -> list[tuple[Any, ...]]:
    """Every row of a model's table as plain tuples (for exact comparisons)."""
    table = model.__table__
    async with svc.ctx.session_factory() as s:
        result = await s.execute(select(table).order_by(*(order or table.primary_key.columns)))
        return [tuple(r) for r in result.all()]
