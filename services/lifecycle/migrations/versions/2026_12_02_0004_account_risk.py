"""lifecycle: the latest churn risk per account (from metrics' risk.changed)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import JSONType, UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "account_risk",
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("band", sa.String(10), nullable=False),
        sa.Column("as_of", UTCDateTime(), nullable=False),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("drivers", JSONType, nullable=False),
        sa.PrimaryKeyConstraint("account_id", name="pk_account_risk"),
    )
    op.create_index("ix_account_risk_band", "account_risk", ["band"])


def downgrade() -> None:
    op.drop_table("account_risk")
