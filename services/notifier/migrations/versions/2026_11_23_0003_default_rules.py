"""notifier: the default rules a post-sales team wants on day one

They have no channels: they notify the channels flagged `default: true` (none until an operator
creates one; until then their alerts still fire, are listed and emitted on the alerts topic).
Seeding in a migration runs once per database, so replicas starting together cannot duplicate them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import JSONType, UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = "00000000-0000-4000-8000-00000000000{}"

DEFAULT_RULES = [
    {
        "id": _ID.format(1), "name": "health-turned-red", "severity": "critical",
        "description": "An account's health band turned red; resolves when it is green again.",
        "event_type": "postsales.health.changed", "conditions": {"data.new_band": {"eq": "red"}},
        "resolve_when": {"event_type": "postsales.health.changed", "conditions": {"data.new_band": {"eq": "green"}}},
        "group_wait": "30s", "repeat_interval": "24h",
        "summary": {"en": "Health of {{ account.name or subject }} turned red (score {{ data.new_score }})",
                    "ja": "{{ account.name or subject }} のヘルスが赤になりました (スコア {{ data.new_score }})"},
    },
    {
        "id": _ID.format(2), "name": "nps-detractor", "severity": "warning",
        "description": "An NPS response of 6 or less.",
        "event_type": "postsales.survey.nps", "conditions": {"data.score": {"lte": 6}},
        "resolve_when": None, "group_wait": "30s", "repeat_interval": "24h",
        "summary": {"en": "NPS detractor at {{ account.name or subject }}: score {{ data.score }}",
                    "ja": "{{ account.name or subject }} で NPS 批判者: スコア {{ data.score }}"},
    },
    {
        "id": _ID.format(3), "name": "renewal-at-risk", "severity": "critical",
        "description": "A renewal window opened while the account's last known health is not green.",
        "event_type": "postsales.renewal.window_entered",
        "conditions": {"account.health_band": {"in": ["yellow", "red"]}},
        "resolve_when": {"event_type": "postsales.renewal.recorded", "conditions": {}},
        "group_wait": "30s", "repeat_interval": "7d",
        "summary": {"en": "Renewal of {{ account.name or subject }} in {{ data.window_days }} days "
                          "with health {{ account.health_band }}",
                    "ja": "{{ account.name or subject }} の更新まで {{ data.window_days }} 日 "
                          "(ヘルス {{ account.health_band }})"},
    },
    {
        "id": _ID.format(4), "name": "onboarding-stuck", "severity": "warning",
        "description": "An onboarding task is overdue; resolves when onboarding completes.",
        "event_type": "postsales.task.overdue", "conditions": {},
        "resolve_when": {"event_type": "postsales.onboarding.completed", "conditions": {}},
        "group_wait": "30s", "repeat_interval": "3d",
        "summary": {"en": "Onboarding of {{ account.name or subject }} is stuck: '{{ data.title }}' overdue",
                    "ja": "{{ account.name or subject }} のオンボーディングが停滞: 「{{ data.title }}」が期限超過"},
    },
    {
        "id": _ID.format(5), "name": "commitment-at-risk", "severity": "warning",
        "description": "A promised commitment is at risk; resolves when delivered or waived.",
        "event_type": "postsales.commitment.updated", "conditions": {"data.status": {"eq": "at_risk"}},
        "group_by": ["subject", "data.commitment_id"],
        "resolve_when": {"event_type": "postsales.commitment.updated",
                         "conditions": {"data.status": {"in": ["delivered", "waived"]}}},
        "group_wait": "30s", "repeat_interval": "3d",
        "summary": {"en": "Commitment '{{ data.title }}' for {{ account.name or subject }} is at risk",
                    "ja": "{{ account.name or subject }} への約束「{{ data.title }}」が危険な状態です"},
    },
]


def upgrade() -> None:
    rules = sa.table(
        "rules",
        sa.column("id", sa.String), sa.column("name", sa.String), sa.column("description", sa.Text),
        sa.column("event_type", sa.String), sa.column("conditions", JSONType), sa.column("severity", sa.String),
        sa.column("channels", JSONType), sa.column("group_by", JSONType), sa.column("group_wait", sa.String),
        sa.column("repeat_interval", sa.String), sa.column("escalation", JSONType),
        sa.column("resolve_when", JSONType), sa.column("inhibits", JSONType), sa.column("lang", sa.String),
        sa.column("summary", JSONType), sa.column("enabled", sa.Boolean), sa.column("builtin", sa.Boolean),
        sa.column("created_at", UTCDateTime()), sa.column("updated_at", UTCDateTime()),
    )
    now = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
    op.bulk_insert(rules, [
        {"channels": [], "group_by": ["subject"], "escalation": None, "inhibits": None, "lang": None,
         "enabled": True, "builtin": True, "created_at": now, "updated_at": now, **rule}
        for rule in DEFAULT_RULES
    ])


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM rules WHERE builtin"))
