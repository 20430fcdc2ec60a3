"""Migration operations on the infrastructure tables every service has (outbox, processed events,
idempotency keys), called from each service's own revisions.

These are frozen copies of the tables as each revision made them: a migration must build the same
schema forever, whatever ``shared.db.infra_tables`` declares today (the drift tests check that the
last revision and the models agree).
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import JSON, BigInteger, Column, Integer, LargeBinary, MetaData, String, Table, Text
from sqlalchemy.dialects import postgresql

from shared.db import NAMING_CONVENTION, UTCDateTime


def _infra_tables_v1(metadata: MetaData) -> list[Table]:
    json = JSON().with_variant(postgresql.JSONB(), "postgresql")
    big_int = BigInteger().with_variant(Integer(), "sqlite")
    return [
        Table(
            "outbox", metadata,
            Column("id", big_int, primary_key=True, autoincrement=True),
            Column("event_id", String(200), nullable=False),
            Column("topic", String(200), nullable=False),
            Column("key", String(200), nullable=False),
            Column("payload", LargeBinary, nullable=False),
            Column("headers", json, nullable=True),
            Column("created_at", UTCDateTime, nullable=False),
            Column("published_at", UTCDateTime, nullable=True, index=True),
            Column("attempts", Integer, nullable=False),
            Column("last_error", Text, nullable=True),
        ),
        Table(
            "processed_events", metadata,
            Column("consumer", String(200), primary_key=True),
            Column("source", String(500), primary_key=True),
            Column("event_id", String(200), primary_key=True),
            Column("processed_at", UTCDateTime, nullable=False),
        ),
        Table(
            "idempotency_keys", metadata,
            Column("key", String(255), primary_key=True),
            Column("scope", String(500), primary_key=True),
            Column("request_hash", String(64), nullable=False),
            Column("status_code", Integer, nullable=False),
            Column("response_body", LargeBinary, nullable=False),
            Column("created_at", UTCDateTime, nullable=False),
        ),
    ]


def create_infra_tables() -> None:
    """The first revision of every service: the three tables as they were first made."""
    bind = op.get_bind()
    for table in _infra_tables_v1(MetaData(naming_convention=NAMING_CONVENTION)):
        table.create(bind)


def drop_infra_tables() -> None:
    for name in ("idempotency_keys", "processed_events", "outbox"):
        op.drop_table(name)


def create_retention_indexes() -> None:
    """Indexes the retention purge walks: dedup keys by when processed, idempotency keys by age."""
    op.create_index("ix_processed_events_processed_at", "processed_events", ["processed_at"])
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def drop_retention_indexes() -> None:
    op.drop_index("ix_idempotency_keys_created_at", table_name="idempotency_keys")
    op.drop_index("ix_processed_events_processed_at", table_name="processed_events")
