"""lifecycle domain: accounts, stage changes, tasks, touchpoints, opportunities, renewals,
renewal-window ledger, account health, timeline

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import BigIntPK, JSONType, UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(18, 2).with_variant(sa.String(40), "sqlite")


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(200), nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("segment", sa.String(100), nullable=True),
        sa.Column("plan", sa.String(100), nullable=True),
        sa.Column("stage", sa.String(20), nullable=False),
        sa.Column("owner", sa.String(200), nullable=True),
        sa.Column("seats", sa.Integer(), nullable=True),
        sa.Column("arr", MONEY, nullable=True),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("contract_start", sa.Date(), nullable=True),
        sa.Column("renewal_date", sa.Date(), nullable=True),
        sa.Column("handoff_id", sa.String(200), nullable=True),
        sa.Column("crm_opportunity_id", sa.String(200), nullable=True),
        sa.Column("onboarding_completed_at", UTCDateTime(), nullable=True),
        sa.Column("stage_changed_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_accounts"),
    )
    op.create_index("ix_accounts_segment", "accounts", ["segment"])
    op.create_index("ix_accounts_stage", "accounts", ["stage"])
    op.create_index("ix_accounts_owner", "accounts", ["owner"])
    op.create_index("ix_accounts_renewal_date", "accounts", ["renewal_date"])
    op.create_index("ix_accounts_created_at", "accounts", ["created_at"])

    op.create_table(
        "stage_changes",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("from_stage", sa.String(20), nullable=True),
        sa.Column("to_stage", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(200), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name="fk_stage_changes_account_id_accounts"),
        sa.PrimaryKeyConstraint("id", name="pk_stage_changes"),
        sa.UniqueConstraint("account_id", "seq", name="uq_stage_changes_account_id_seq"),
    )
    op.create_index("ix_stage_changes_account_id", "stage_changes", ["account_id"])

    op.create_table(
        "tasks",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("milestone", sa.String(64), nullable=True),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("owner", sa.String(200), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("commitment_id", sa.String(200), nullable=True),
        sa.Column("handoff_id", sa.String(200), nullable=True),
        sa.Column("completed_at", UTCDateTime(), nullable=True),
        sa.Column("overdue_notified_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name="fk_tasks_account_id_accounts"),
        sa.PrimaryKeyConstraint("id", name="pk_tasks"),
        sa.UniqueConstraint("account_id", "milestone", name="uq_tasks_account_id_milestone"),
        sa.UniqueConstraint("account_id", "commitment_id", name="uq_tasks_account_id_commitment_id"),
    )
    op.create_index("ix_tasks_account_id", "tasks", ["account_id"])
    op.create_index("ix_tasks_status_due_date", "tasks", ["status", "due_date"])

    op.create_table(
        "touchpoints",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("attendees", JSONType, nullable=False),
        sa.Column("actor", sa.String(200), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name="fk_touchpoints_account_id_accounts"),
        sa.PrimaryKeyConstraint("id", name="pk_touchpoints"),
    )
    op.create_index("ix_touchpoints_account_id", "touchpoints", ["account_id"])

    op.create_table(
        "opportunities",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("title", sa.String(300), nullable=True),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("owner", sa.String(200), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("expected_close_date", sa.Date(), nullable=True),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name="fk_opportunities_account_id_accounts"),
        sa.PrimaryKeyConstraint("id", name="pk_opportunities"),
    )
    op.create_index("ix_opportunities_account_id", "opportunities", ["account_id"])

    op.create_table(
        "renewals",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("arr_before", MONEY, nullable=False),
        sa.Column("arr_after", MONEY, nullable=False),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("renewal_date", sa.Date(), nullable=True),
        sa.Column("next_renewal_date", sa.Date(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(200), nullable=True),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name="fk_renewals_account_id_accounts"),
        sa.PrimaryKeyConstraint("id", name="pk_renewals"),
    )
    op.create_index("ix_renewals_account_id", "renewals", ["account_id"])

    op.create_table(
        "renewal_windows_fired",
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("renewal_date", sa.Date(), nullable=False),
        sa.Column("window_days", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("fired_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "renewal_date", "window_days", name="pk_renewal_windows_fired"),
    )

    op.create_table(
        "account_health",
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("band", sa.String(10), nullable=False),
        sa.Column("as_of", UTCDateTime(), nullable=False),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("factors", JSONType, nullable=False),
        sa.PrimaryKeyConstraint("account_id", name="pk_account_health"),
    )
    op.create_index("ix_account_health_band", "account_health", ["band"])

    op.create_table(
        "timeline",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("type", sa.String(200), nullable=False),
        sa.Column("summary", sa.String(500), nullable=False),
        sa.Column("actor", sa.String(200), nullable=True),
        sa.Column("event_id", sa.String(200), nullable=True),
        sa.Column("data", JSONType, nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_timeline"),
    )
    op.create_index("ix_timeline_account_id_occurred_at", "timeline", ["account_id", "occurred_at"])


def downgrade() -> None:
    for table in ("timeline", "account_health", "renewal_windows_fired", "renewals", "opportunities",
                  "touchpoints", "tasks", "stage_changes", "accounts"):
        op.drop_table(table)
