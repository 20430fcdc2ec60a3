"""notifier: channels, rules, account states, alerts, silences, deliveries and their attempts

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


def _ts(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, UTCDateTime(), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "account_states",
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("name", sa.String(500), nullable=True),
        sa.Column("owner", sa.String(200), nullable=True),
        sa.Column("stage", sa.String(50), nullable=True),
        sa.Column("health_band", sa.String(20), nullable=True),
        sa.Column("health_score", sa.Double(), nullable=True),
        _ts("health_at", True),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_account_states")),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("active_key", sa.String(64), nullable=True),
        sa.Column("rule_id", sa.String(36), nullable=False),
        sa.Column("rule_name", sa.String(200), nullable=False),
        sa.Column("severity", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("labels", JSONType, nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("last_event", JSONType, nullable=False),
        _ts("starts_at"),
        _ts("last_event_at"),
        _ts("next_notify_at", True),
        _ts("last_notified_at", True),
        sa.Column("notify_count", sa.Integer(), nullable=False),
        sa.Column("suppressed_by", sa.String(200), nullable=True),
        _ts("escalated_at", True),
        _ts("acknowledged_at", True),
        sa.Column("acknowledged_by", sa.String(200), nullable=True),
        _ts("resolved_at", True),
        sa.Column("resolved_by", sa.String(200), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("active_key", name=op.f("uq_alerts_active_key")),
    )
    op.create_index("ix_alerts_created_at_id", "alerts", ["created_at", "id"])
    op.create_index(op.f("ix_alerts_fingerprint"), "alerts", ["fingerprint"])
    op.create_index(op.f("ix_alerts_rule_id"), "alerts", ["rule_id"])
    op.create_index("ix_alerts_status_next_notify_at", "alerts", ["status", "next_notify_at"])
    op.create_index(op.f("ix_alerts_subject"), "alerts", ["subject"])
    op.create_table(
        "channels",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("config", JSONType, nullable=False),
        sa.Column("secret_enc", sa.Text(), nullable=True),
        sa.Column("lang", sa.String(5), nullable=True),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channels")),
        sa.UniqueConstraint("name", name=op.f("uq_channels_name")),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("alert_id", sa.String(36), nullable=False),
        sa.Column("channel_id", sa.String(36), nullable=False),
        sa.Column("channel_kind", sa.String(20), nullable=False),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("payload", JSONType, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _ts("next_attempt_at"),
        _ts("claimed_until", True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _ts("delivered_at", True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
    )
    op.create_index(op.f("ix_deliveries_alert_id"), "deliveries", ["alert_id"])
    op.create_index(op.f("ix_deliveries_channel_id"), "deliveries", ["channel_id"])
    op.create_index("ix_deliveries_created_at_id", "deliveries", ["created_at", "id"])
    op.create_index("ix_deliveries_status_next_attempt_at", "deliveries", ["status", "next_attempt_at"])
    op.create_table(
        "delivery_attempts",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("delivery_id", sa.String(36), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        _ts("started_at"),
        _ts("finished_at", True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_attempts")),
    )
    op.create_index(op.f("ix_delivery_attempts_delivery_id"), "delivery_attempts", ["delivery_id"])
    op.create_table(
        "rules",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("conditions", JSONType, nullable=False),
        sa.Column("severity", sa.String(20), nullable=False),
        sa.Column("channels", JSONType, nullable=False),
        sa.Column("group_by", JSONType, nullable=False),
        sa.Column("group_wait", sa.String(20), nullable=False),
        sa.Column("repeat_interval", sa.String(20), nullable=False),
        sa.Column("escalation", JSONType, nullable=True),
        sa.Column("resolve_when", JSONType, nullable=True),
        sa.Column("inhibits", JSONType, nullable=True),
        sa.Column("lang", sa.String(5), nullable=True),
        sa.Column("summary", JSONType, nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("builtin", sa.Boolean(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rules")),
        sa.UniqueConstraint("name", name=op.f("uq_rules_name")),
    )
    op.create_table(
        "silences",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("matchers", JSONType, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        _ts("starts_at"),
        _ts("ends_at"),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_silences")),
    )
    op.create_index(op.f("ix_silences_ends_at"), "silences", ["ends_at"])


def downgrade() -> None:
    for name in ("silences", "rules", "delivery_attempts", "deliveries", "channels", "alerts", "account_states"):
        op.drop_table(name)
