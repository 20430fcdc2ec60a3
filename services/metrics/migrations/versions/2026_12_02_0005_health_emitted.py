"""metrics: health thresholds in the model, band reason, and the last emitted health per account

``health.changed`` is emitted on a band change or when the score moved by at least the minimum
delta since the last *emitted* score, so that score (band, components) is kept per account.

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


def upgrade() -> None:
    with op.batch_alter_table("health_models") as t:
        t.add_column(sa.Column("thresholds", JSONType, nullable=True))
    with op.batch_alter_table("health_scores") as t:
        t.add_column(sa.Column("band_reason", sa.String(500), nullable=True))
        t.add_column(sa.Column("emitted_score", sa.Float(), nullable=True))
        t.add_column(sa.Column("emitted_band", sa.String(10), nullable=True))
        t.add_column(sa.Column("emitted_components", JSONType, nullable=True))
        t.add_column(sa.Column("emitted_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("health_scores") as t:
        for name in ("emitted_at", "emitted_components", "emitted_band", "emitted_score", "band_reason"):
            t.drop_column(name)
    with op.batch_alter_table("health_models") as t:
        t.drop_column("thresholds")
