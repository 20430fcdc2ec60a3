"""notifier: built-in rules page on a transition, not on a first score; a built-in churn-risk rule

- ``health-turned-red`` fires when the band moves into red from a known other band. A first score
  (``old_band`` absent, e.g. every account of an imported book) and a red-to-red score update (emitted
  when the score moves by the minimum delta) no longer raise it.
- ``churn-risk-high`` (new): the churn-risk band moved into ``high`` from a known lower band; resolves
  when it drops back to medium or low. A first-ever scoring after an import pages no one.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import JSONType, UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HEALTH_RED_ID = "00000000-0000-4000-8000-000000000001"
CHURN_RISK_ID = "00000000-0000-4000-8000-000000000006"

HEALTH_RED = {
    "description": "An account's health band moved into red from another band; resolves when it is green again.",
    "conditions": {"data.new_band": {"eq": "red"}, "data.old_band": {"exists": True, "ne": "red"}},
}
HEALTH_RED_BEFORE = {
    "description": "An account's health band turned red; resolves when it is green again.",
    "conditions": {"data.new_band": {"eq": "red"}},
}

CHURN_RISK = {
    "id": CHURN_RISK_ID, "name": "churn-risk-high", "severity": "critical",
    "description": "An account's churn-risk band moved into high; resolves when it drops to medium or low.",
    "event_type": "postsales.risk.changed",
    "conditions": {"data.new_band": {"eq": "high"}, "data.old_band": {"exists": True}},
    "resolve_when": {"event_type": "postsales.risk.changed",
                     "conditions": {"data.new_band": {"in": ["low", "medium"]}}},
    "group_wait": "30s", "repeat_interval": "7d",
    "summary": {"en": "Churn risk of {{ account.name or subject }} is high "
                      "(probability {{ data.new_probability }}, was {{ data.old_band }})",
                "ja": "{{ account.name or subject }} の解約リスクが高くなりました "
                      "(確率 {{ data.new_probability }}、以前は {{ data.old_band }})"},
}


def _rules() -> sa.TableClause:
    return sa.table(
        "rules",
        sa.column("id", sa.String), sa.column("name", sa.String), sa.column("description", sa.Text),
        sa.column("event_type", sa.String), sa.column("conditions", JSONType), sa.column("severity", sa.String),
        sa.column("channels", JSONType), sa.column("group_by", JSONType), sa.column("group_wait", sa.String),
        sa.column("repeat_interval", sa.String), sa.column("escalation", JSONType),
        sa.column("resolve_when", JSONType), sa.column("inhibits", JSONType), sa.column("lang", sa.String),
        sa.column("summary", JSONType), sa.column("enabled", sa.Boolean), sa.column("builtin", sa.Boolean),
        sa.column("created_at", UTCDateTime()), sa.column("updated_at", UTCDateTime()),
    )


def _set_health_red(values: dict[str, object]) -> None:
    rules = _rules()
    op.execute(rules.update().where(rules.c.id == HEALTH_RED_ID, rules.c.builtin.is_(True)).values(
        description=values["description"], conditions=values["conditions"]))


def upgrade() -> None:
    _set_health_red(HEALTH_RED)
    now = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)
    op.bulk_insert(_rules(), [{
        "channels": [], "group_by": ["subject"], "escalation": None, "inhibits": None, "lang": None,
        "enabled": True, "builtin": True, "created_at": now, "updated_at": now, **CHURN_RISK,
    }])


def downgrade() -> None:
    rules = _rules()
    op.execute(rules.delete().where(rules.c.id == CHURN_RISK_ID))
    _set_health_red(HEALTH_RED_BEFORE)
