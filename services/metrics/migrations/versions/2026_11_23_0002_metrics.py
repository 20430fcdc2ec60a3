"""metrics: raw usage events, daily rollups, feedback, account facts, health

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import JSONType, UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "usage_events",
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("type", sa.String(200), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("feature", sa.String(200), nullable=True),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", "event_id", name="pk_usage_events"),
    )
    op.create_index("ix_usage_events_account_id_day", "usage_events", ["account_id", "day"])
    op.create_index("ix_usage_events_day", "usage_events", ["day"])
    op.create_table(
        "usage_daily",
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("events", sa.Float(), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("active_users", sa.Integer(), nullable=False),
        sa.Column("last_at", UTCDateTime(), nullable=False, comment="time of the latest event counted that day"),
        sa.PrimaryKeyConstraint("account_id", "day", name="pk_usage_daily"),
    )
    op.create_table(
        "usage_daily_types",
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("type", sa.String(200), nullable=False),
        sa.Column("events", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "day", "type", name="pk_usage_daily_types"),
    )
    op.create_table(
        "usage_daily_features",
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("feature", sa.String(200), nullable=False),
        sa.Column("events", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "day", "feature", name="pk_usage_daily_features"),
    )
    op.create_table(
        "usage_daily_users",
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "day", "user_id", name="pk_usage_daily_users"),
    )
    op.create_table(
        "surveys",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("respondent", sa.String(320), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("responded_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_surveys"),
        sa.UniqueConstraint("source", "event_id", name="uq_surveys_source_event_id"),
    )
    op.create_index("ix_surveys_account_id", "surveys", ["account_id"])
    op.create_index("ix_surveys_responded_at", "surveys", ["responded_at"])
    op.create_table(
        "tickets",
        sa.Column("ticket_id", sa.String(200), nullable=False),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=True),
        sa.Column("first_response_at", UTCDateTime(), nullable=True),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("ticket_id", name="pk_tickets"),
    )
    op.create_index("ix_tickets_account_id", "tickets", ["account_id"])
    op.create_table(
        "accounts",
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("name", sa.String(500), nullable=True),
        sa.Column("segment", sa.String(100), nullable=True),
        sa.Column("owner", sa.String(320), nullable=True),
        sa.Column("stage", sa.String(50), nullable=True),
        sa.Column("seats", sa.Integer(), nullable=True),
        sa.Column("arr", sa.String(40), nullable=True),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("contract_start", sa.Date(), nullable=True),
        sa.Column("renewal_date", sa.Date(), nullable=True),
        sa.Column("planned_go_live", sa.Date(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=True),
        sa.Column("churned_at", UTCDateTime(), nullable=True),
        sa.Column("onboarding_completed_at", UTCDateTime(), nullable=True),
        sa.Column("last_touchpoint_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name="pk_accounts"),
    )
    op.create_table(
        "renewals",
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("renewal_date", sa.Date(), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("arr_before", sa.String(40), nullable=False),
        sa.Column("arr_after", sa.String(40), nullable=False),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "renewal_date", name="pk_renewals"),
    )
    op.create_table(
        "opportunities",
        sa.Column("opportunity_id", sa.String(200), nullable=False),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("amount", sa.String(40), nullable=False),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("won_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("opportunity_id", name="pk_opportunities"),
    )
    op.create_index("ix_opportunities_account_id", "opportunities", ["account_id"])
    op.create_table(
        "commitments",
        sa.Column("commitment_id", sa.String(200), nullable=False),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("handoff_id", sa.String(200), nullable=True),
        sa.Column("title", sa.String(500), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("commitment_id", name="pk_commitments"),
    )
    op.create_index("ix_commitments_account_id", "commitments", ["account_id"])
    op.create_table(
        "health_models",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("weights", JSONType, nullable=False),
        sa.Column("bands", JSONType, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=True),
        sa.PrimaryKeyConstraint("version", name="pk_health_models"),
    )
    op.create_table(
        "health_scores",
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("band", sa.String(10), nullable=True),
        sa.Column("coverage", sa.Float(), nullable=False),
        sa.Column("components", JSONType, nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("computed_at", UTCDateTime(), nullable=False),
        sa.Column("as_of", UTCDateTime(), nullable=True),
        sa.Column("previous_score", sa.Float(), nullable=True),
        sa.Column("previous_band", sa.String(10), nullable=True),
        sa.Column("previous_components", JSONType, nullable=True),
        sa.Column("previous_computed_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("account_id", name="pk_health_scores"),
    )
    op.create_table(
        "health_dirty",
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("marked_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name="pk_health_dirty"),
    )


def downgrade() -> None:
    for name in ("health_dirty", "health_scores", "health_models", "commitments", "opportunities", "renewals",
                 "accounts", "tickets", "surveys", "usage_daily_users", "usage_daily_features",
                 "usage_daily_types", "usage_daily", "usage_events"):
        op.drop_table(name)
