"""metrics: one secondary index on raw usage events, (day, account_id)

Every read of the raw table is a recompute over a day range, for all accounts or one; (day,
account_id) serves both, and each index less makes the ingestion hot path's insert cheaper.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_usage_events_day_account_id", "usage_events", ["day", "account_id"])
    op.drop_index("ix_usage_events_account_id_day", table_name="usage_events")
    op.drop_index("ix_usage_events_day", table_name="usage_events")


def downgrade() -> None:
    op.create_index("ix_usage_events_day", "usage_events", ["day"])
    op.create_index("ix_usage_events_account_id_day", "usage_events", ["account_id", "day"])
    op.drop_index("ix_usage_events_day_account_id", table_name="usage_events")
