"""The lifecycle migrations build exactly the schema the models declare (playbooks included)."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from services.lifecycle.models import Base


async def test_lifecycle_migrations_match_models(service: Any) -> None:
    async with service("lifecycle", run_consumers=False, run_relay=False, run_scheduler=False) as svc, \
            svc.ctx.engine.connect() as conn:
        diff = await conn.run_sync(lambda c: compare_metadata(
            MigrationContext.configure(c, opts={"compare_type": True}), Base.metadata))
    assert diff == []
