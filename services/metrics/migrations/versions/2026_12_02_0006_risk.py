"""metrics: fact history (point-in-time account facts), churn-risk models and scores

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import JSONType, UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fact_history",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("data", JSONType, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_fact_history"),
        sa.UniqueConstraint("event_id", name="uq_fact_history_event_id"),
    )
    op.create_index("ix_fact_history_account_id", "fact_history", ["account_id"])
    op.create_table(
        "risk_models",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("trained_at", UTCDateTime(), nullable=False),
        sa.Column("trained_by", sa.String(100), nullable=True),
        sa.Column("horizon_days", sa.Integer(), nullable=False),
        sa.Column("features", JSONType, nullable=False),
        sa.Column("params", JSONType, nullable=False,
                  comment="coefficients, intercept, scaler means/scales, fill values"),
        sa.Column("backtest", JSONType, nullable=False),
        sa.PrimaryKeyConstraint("version", name="pk_risk_models"),
    )
    op.create_table(
        "risk_scores",
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("band", sa.String(10), nullable=False),
        sa.Column("drivers", JSONType, nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("horizon_days", sa.Integer(), nullable=False),
        sa.Column("as_of", UTCDateTime(), nullable=False),
        sa.Column("arr", sa.String(40), nullable=True),
        sa.Column("arr_at_risk", sa.Float(), nullable=False),
        sa.Column("owner", sa.String(320), nullable=True),
        sa.Column("segment", sa.String(100), nullable=True),
        sa.Column("renewal_date", sa.Date(), nullable=True),
        sa.Column("previous_band", sa.String(10), nullable=True),
        sa.Column("previous_probability", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("account_id", name="pk_risk_scores"),
    )
    op.create_index("ix_risk_scores_arr_at_risk", "risk_scores", ["arr_at_risk"])


def downgrade() -> None:
    for name in ("risk_scores", "risk_models", "fact_history"):
        op.drop_table(name)
