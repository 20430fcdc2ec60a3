"""The migrations build exactly the schema the models declare."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from services.metrics.models import Base


async def test_migrations_match_models(service: Any) -> None:
    async with service("metrics", run_consumers=False, run_relay=False) as svc, svc.ctx.engine.connect() as conn:
        diff = await conn.run_sync(lambda c: compare_metadata(
            MigrationContext.configure(c, opts={"compare_type": True}), Base.metadata))
    assert diff == []
