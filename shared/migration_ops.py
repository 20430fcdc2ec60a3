"""Migration operations every service's first revision runs: the infrastructure tables."""

from __future__ import annotations

from alembic import op
from sqlalchemy import MetaData

from shared.db import NAMING_CONVENTION, infra_tables


def create_infra_tables() -> None:
    tables = infra_tables(MetaData(naming_convention=NAMING_CONVENTION))
    bind = op.get_bind()
    for table in (tables.outbox, tables.processed_events, tables.idempotency_keys):
        table.create(bind)


def drop_infra_tables() -> None:
    for name in ("idempotency_keys", "processed_events", "outbox"):
        op.drop_table(name)
