"""notifier: acknowledgement notes, retention indexes, `onboarding-stuck` only during onboarding

- ``account_states.stage_at``: when the remembered stage took effect, so imported history (older
  events arriving late) never overwrites a newer stage.
- ``alerts.acknowledged_note``: ``ack`` and ``resolve`` take the same ``note``; resolve's goes to
  ``resolution`` as before.
- Indexes the retention purge walks: resolved alerts by ``resolved_at``, finished deliveries by
  ``updated_at``.
- The built-in ``onboarding-stuck`` rule fires only for onboarding-plan tasks (milestones and
  commitments) while the account is in onboarding, one alert per task, and resolves when that task
  is completed or the account leaves onboarding. Its channels, severity and texts are left as they are.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import JSONType, UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ONBOARDING_STUCK_ID = "00000000-0000-4000-8000-000000000004"

ONBOARDING_STUCK = {
    "description": "An onboarding-plan task (milestone or commitment) is overdue while the account is in "
                   "onboarding; resolves when the task is completed or the account leaves onboarding.",
    "conditions": {"account.stage": {"eq": "onboarding"}, "data.kind": {"in": ["milestone", "commitment"]}},
    "group_by": ["subject", "data.task_id"],
    "resolve_when": [
        {"event_type": "postsales.task.completed", "conditions": {}, "scope": "alert"},
        {"event_type": "postsales.account.stage_changed", "conditions": {"data.from": {"eq": "onboarding"}},
         "scope": "account"},
        {"event_type": "postsales.onboarding.completed", "conditions": {}, "scope": "account"},
    ],
}
PREVIOUS = {
    "description": "An onboarding task is overdue; resolves when onboarding completes.",
    "conditions": {},
    "group_by": ["subject"],
    "resolve_when": {"event_type": "postsales.onboarding.completed", "conditions": {}},
}


def _rules() -> sa.TableClause:
    return sa.table("rules", sa.column("id", sa.String), sa.column("description", sa.Text),
                    sa.column("conditions", JSONType), sa.column("group_by", JSONType),
                    sa.column("resolve_when", JSONType), sa.column("builtin", sa.Boolean))


def _set(values: dict[str, object]) -> None:
    rules = _rules()
    op.execute(rules.update().where(rules.c.id == ONBOARDING_STUCK_ID, rules.c.builtin.is_(True)).values(
        description=values["description"], conditions=values["conditions"], group_by=values["group_by"],
        resolve_when=values["resolve_when"]))


def upgrade() -> None:
    with op.batch_alter_table("account_states") as batch:
        batch.add_column(sa.Column("stage_at", UTCDateTime(), nullable=True))
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("acknowledged_note", sa.Text(), nullable=True))
    op.create_index("ix_alerts_status_resolved_at", "alerts", ["status", "resolved_at"])
    op.create_index("ix_deliveries_status_updated_at", "deliveries", ["status", "updated_at"])
    _set(ONBOARDING_STUCK)


def downgrade() -> None:
    _set(PREVIOUS)
    op.drop_index("ix_deliveries_status_updated_at", table_name="deliveries")
    op.drop_index("ix_alerts_status_resolved_at", table_name="alerts")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("acknowledged_note")
    with op.batch_alter_table("account_states") as batch:
        batch.drop_column("stage_at")


