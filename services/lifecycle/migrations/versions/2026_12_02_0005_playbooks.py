"""lifecycle: playbooks, their runs, tasks created by a run, the default plays

The defaults are ordinary rows (editable, disable-able, deletable); seeding them in a migration runs
once per database, so replicas starting together cannot duplicate them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import JSONType, UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = "00000000-0000-4000-9000-00000000000{}"

DEFAULT_PLAYBOOKS = [
    {
        "id": _ID.format(1), "name": "High churn risk: save plan",
        "description": "The churn-risk model put the account in the high band: build and run a save plan.",
        "event_type": "postsales.risk.changed", "conditions": {"data.new_band": {"eq": "high"}},
        "tasks": [
            {"title": "Review the churn-risk drivers and write a save plan", "due_in_days": 2,
             "owner": "account_owner"},
            {"title": "Save-plan call with the customer's sponsor", "due_in_days": 7, "owner": "account_owner"},
            {"title": "Agree on success criteria and the next check-in", "due_in_days": 14,
             "owner": "account_owner"},
        ],
        "cooldown": "30d",
    },
    {
        "id": _ID.format(2), "name": "NPS detractor follow-up",
        "description": "An NPS response of 6 or less: call the respondent within 2 days and close the loop.",
        "event_type": "postsales.survey.nps", "conditions": {"data.score": {"lte": 6}},
        "tasks": [
            {"title": "Follow-up call with the NPS detractor", "due_in_days": 2, "owner": "account_owner"},
        ],
        "cooldown": "14d",
    },
    {
        "id": _ID.format(3), "name": "Renewal prep (90 days)",
        "description": "The renewal is 90 days out: review the account and prepare the renewal.",
        "event_type": "postsales.renewal.window_entered", "conditions": {"data.window_days": {"eq": 90}},
        "tasks": [
            {"title": "Review health, usage and open commitments before the renewal", "due_in_days": 7,
             "owner": "account_owner"},
            {"title": "Prepare the renewal proposal", "due_in_days": 21, "owner": "account_owner"},
            {"title": "Renewal meeting with the customer", "due_in_days": 45, "owner": "account_owner"},
        ],
        "cooldown": "30d",
    },
    {
        "id": _ID.format(4), "name": "Unblock onboarding",
        "description": "A task of the onboarding plan is overdue while the account is onboarding.",
        "event_type": "postsales.task.overdue",
        "conditions": {"account.stage": {"eq": "onboarding"}, "data.kind": {"in": ["milestone", "commitment"]}},
        "tasks": [
            {"title": "Unblock the overdue onboarding task", "due_in_days": 2, "owner": "account_owner"},
            {"title": "Agree a recovery plan for go-live with the customer", "due_in_days": 5,
             "owner": "account_owner"},
        ],
        "cooldown": "7d",
    },
]


def upgrade() -> None:
    op.create_table(
        "playbooks",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("conditions", JSONType, nullable=False),
        sa.Column("tasks", JSONType, nullable=False),
        sa.Column("cooldown", sa.String(20), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("builtin", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_playbooks"),
        sa.UniqueConstraint("name", name="uq_playbooks_name"),
    )
    op.create_table(
        "playbook_runs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("playbook_id", sa.String(36), nullable=False),
        sa.Column("playbook_name", sa.String(200), nullable=False),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("active_key", sa.String(300), nullable=True),
        sa.Column("task_ids", JSONType, nullable=False),
        sa.Column("trigger_source", sa.String(500), nullable=False),
        sa.Column("trigger_event_id", sa.String(200), nullable=False),
        sa.Column("trigger_event_type", sa.String(200), nullable=False),
        sa.Column("trigger_time", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("health_band_start", sa.String(10), nullable=True),
        sa.Column("health_band_end", sa.String(10), nullable=True),
        sa.Column("risk_band_start", sa.String(10), nullable=True),
        sa.Column("risk_band_end", sa.String(10), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name="fk_playbook_runs_account_id_accounts"),
        sa.PrimaryKeyConstraint("id", name="pk_playbook_runs"),
        sa.UniqueConstraint("active_key", name="uq_playbook_runs_active_key"),
        sa.UniqueConstraint("playbook_id", "trigger_source", "trigger_event_id",
                            name="uq_playbook_runs_playbook_id_trigger_source_trigger_event_id"),
    )
    op.create_index("ix_playbook_runs_playbook_id_account_id_ended_at", "playbook_runs",
                    ["playbook_id", "account_id", "ended_at"])
    op.create_index("ix_playbook_runs_account_id_started_at", "playbook_runs", ["account_id", "started_at"])

    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("playbook_run_id", sa.String(36), nullable=True))
        batch.create_foreign_key("fk_tasks_playbook_run_id_playbook_runs", "playbook_runs",
                                 ["playbook_run_id"], ["id"])
        batch.create_index("ix_tasks_playbook_run_id", ["playbook_run_id"])
        batch.create_index("ix_tasks_owner_due_date", ["owner", "due_date"])

    playbooks = sa.table(
        "playbooks",
        sa.column("id", sa.String), sa.column("name", sa.String), sa.column("description", sa.Text),
        sa.column("event_type", sa.String), sa.column("conditions", JSONType), sa.column("tasks", JSONType),
        sa.column("cooldown", sa.String), sa.column("enabled", sa.Boolean), sa.column("builtin", sa.Boolean),
        sa.column("created_at", UTCDateTime()), sa.column("updated_at", UTCDateTime()),
    )
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    op.bulk_insert(playbooks, [
        {"enabled": True, "builtin": True, "created_at": now, "updated_at": now, **playbook}
        for playbook in DEFAULT_PLAYBOOKS
    ])


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_index("ix_tasks_owner_due_date")
        batch.drop_index("ix_tasks_playbook_run_id")
        batch.drop_constraint("fk_tasks_playbook_run_id_playbook_runs", type_="foreignkey")
        batch.drop_column("playbook_run_id")
    op.drop_table("playbook_runs")
    op.drop_table("playbooks")
