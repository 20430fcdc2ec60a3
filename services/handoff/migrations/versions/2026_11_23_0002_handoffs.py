"""handoffs, transitions, commitments, commitment changes, feedback

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
        "handoffs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("crm_opportunity_id", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("account_external_id", sa.String(200), nullable=False),
        sa.Column("account_name", sa.String(300), nullable=False),
        sa.Column("account_segment", sa.String(100), nullable=True),
        sa.Column("account_plan", sa.String(100), nullable=True),
        sa.Column("account_seats", sa.Integer(), nullable=True),
        sa.Column("account_arr", sa.String(40), nullable=True),
        sa.Column("account_currency", sa.String(3), nullable=True),
        sa.Column("account_contract_start", sa.Date(), nullable=True),
        sa.Column("account_renewal_date", sa.Date(), nullable=True),
        sa.Column("challenges", JSONType, nullable=False),
        sa.Column("goals", JSONType, nullable=False),
        sa.Column("proposal", sa.Text(), nullable=True),
        sa.Column("demo_notes", sa.Text(), nullable=True),
        sa.Column("stakeholders", JSONType, nullable=False),
        sa.Column("risks", JSONType, nullable=False),
        sa.Column("no_commitments", sa.Boolean(), nullable=False),
        sa.Column("presales_owner", sa.String(200), nullable=True),
        sa.Column("postsales_owner", sa.String(200), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("submitted_at", UTCDateTime, nullable=True),
        sa.Column("accepted_at", UTCDateTime, nullable=True),
        sa.Column("accepted_by", sa.String(200), nullable=True),
        sa.Column("returned_at", UTCDateTime, nullable=True),
        sa.Column("return_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoffs")),
        sa.UniqueConstraint("crm_opportunity_id", name=op.f("uq_handoffs_crm_opportunity_id")),
    )
    with op.batch_alter_table("handoffs") as batch:
        batch.create_index(op.f("ix_handoffs_status"), ["status"])
        batch.create_index(op.f("ix_handoffs_account_external_id"), ["account_external_id"])
        batch.create_index(op.f("ix_handoffs_account_segment"), ["account_segment"])
        batch.create_index(op.f("ix_handoffs_presales_owner"), ["presales_owner"])
        batch.create_index(op.f("ix_handoffs_postsales_owner"), ["postsales_owner"])

    op.create_table(
        "handoff_transitions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("handoff_id", sa.String(36), nullable=False),
        sa.Column("from_status", sa.String(20), nullable=True),
        sa.Column("to_status", sa.String(20), nullable=False),
        sa.Column("actor", sa.String(200), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(["handoff_id"], ["handoffs.id"], ondelete="CASCADE",
                                name=op.f("fk_handoff_transitions_handoff_id_handoffs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoff_transitions")),
    )
    with op.batch_alter_table("handoff_transitions") as batch:
        batch.create_index(op.f("ix_handoff_transitions_handoff_id"), ["handoff_id"])

    op.create_table(
        "commitments",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("handoff_id", sa.String(36), nullable=False),
        sa.Column("account_external_id", sa.String(200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("owner", sa.String(200), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("evidence", sa.Text(), nullable=True),
        sa.Column("delivered_at", UTCDateTime, nullable=True),
        sa.Column("overdue_flagged_due", sa.Date(), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(["handoff_id"], ["handoffs.id"], ondelete="CASCADE",
                                name=op.f("fk_commitments_handoff_id_handoffs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commitments")),
    )
    with op.batch_alter_table("commitments") as batch:
        batch.create_index(op.f("ix_commitments_handoff_id"), ["handoff_id"])
        batch.create_index(op.f("ix_commitments_account_external_id"), ["account_external_id"])
        batch.create_index(op.f("ix_commitments_owner"), ["owner"])
        batch.create_index("ix_commitments_status_due_date", ["status", "due_date"])

    op.create_table(
        "commitment_changes",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("commitment_id", sa.String(36), nullable=False),
        sa.Column("handoff_id", sa.String(36), nullable=False),
        sa.Column("from_status", sa.String(20), nullable=True),
        sa.Column("to_status", sa.String(20), nullable=False),
        sa.Column("changes", JSONType, nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(200), nullable=True),
        sa.Column("cause", sa.String(40), nullable=False),
        sa.Column("cause_ref", sa.String(200), nullable=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(["commitment_id"], ["commitments.id"], ondelete="CASCADE",
                                name=op.f("fk_commitment_changes_commitment_id_commitments")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commitment_changes")),
    )
    with op.batch_alter_table("commitment_changes") as batch:
        batch.create_index(op.f("ix_commitment_changes_commitment_id"), ["commitment_id"])

    op.create_table(
        "handoff_feedback",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("handoff_id", sa.String(36), nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("category", sa.String(30), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(["handoff_id"], ["handoffs.id"], ondelete="CASCADE",
                                name=op.f("fk_handoff_feedback_handoff_id_handoffs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoff_feedback")),
    )
    with op.batch_alter_table("handoff_feedback") as batch:
        batch.create_index(op.f("ix_handoff_feedback_handoff_id"), ["handoff_id"])


def downgrade() -> None:
    op.drop_table("handoff_feedback")
    op.drop_table("commitment_changes")
    op.drop_table("commitments")
    op.drop_table("handoff_transitions")
    op.drop_table("handoffs")
