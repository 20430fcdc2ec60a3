"""metrics: raw usage events as compressed segments per (transaction, day) and a narrow dedup key table

``usage_events`` (a row and three B-tree entries per event) becomes ``usage_event_keys`` (the
``source + "\\x1f" + id`` key, WITHOUT ROWID on SQLite) plus ``usage_segments``: the existing rows move,
in batches, into one segment per day (at most ``PER_SEGMENT`` events each), in arrival order. The
downgrade rebuilds ``usage_events`` from the segments. The encoding is written out here, not imported:
a migration must not change when the service's code does.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

import datetime as dt
import zlib
from collections.abc import Sequence
from typing import Any

import msgspec
import sqlalchemy as sa
from alembic import op

from shared.db import JSONType, UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5_000
PER_SEGMENT = 100_000
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
US = dt.timedelta(microseconds=1)

events = sa.table(
    "usage_events",
    sa.column("source", sa.String()), sa.column("event_id", sa.String()), sa.column("account_id", sa.String()),
    sa.column("type", sa.String()), sa.column("user_id", sa.String()), sa.column("feature", sa.String()),
    sa.column("quantity", sa.Float()), sa.column("occurred_at", UTCDateTime()), sa.column("day", sa.Date()),
    sa.column("received_at", UTCDateTime()),
)
keys = sa.table("usage_event_keys", sa.column("key", sa.Text()), sa.column("day", sa.Date()))
segments = sa.table(
    "usage_segments",
    sa.column("id", sa.Integer()), sa.column("day", sa.Date()), sa.column("event_count", sa.Integer()),
    sa.column("offsets", JSONType), sa.column("data", sa.LargeBinary()), sa.column("created_at", UTCDateTime()),
)


def _utc(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t


def _create_usage_events() -> None:
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
    op.create_index("ix_usage_events_day_account_id", "usage_events", ["day", "account_id"])


def upgrade() -> None:
    op.create_table(
        "usage_event_keys",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_usage_event_keys"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "usage_segments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("offsets", JSONType, nullable=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_usage_segments"),
    )
    op.create_index("ix_usage_segments_day", "usage_segments", ["day"])
    bind = op.get_bind()
    encoder = msgspec.msgpack.Encoder()
    now = dt.datetime.now(dt.UTC)
    days = bind.execute(sa.select(events.c.day).distinct().order_by(events.c.day)).scalars().all()
    for day in days:
        rows: list[list[Any]] = []

        def flush(rows: list[list[Any]], day: dt.date = day) -> None:
            if rows:
                bind.execute(segments.insert().values(day=day, event_count=len(rows), offsets=None,
                                                      data=zlib.compress(encoder.encode(rows), 1), created_at=now))

        # Arrival order as near as the old table knew it: receive time, then the key.
        order = (events.c.received_at, events.c.source, events.c.event_id)
        after: tuple[Any, ...] | None = None
        while True:
            query = sa.select(events).where(events.c.day == day).order_by(*order).limit(BATCH)
            if after is not None:
                query = query.where(sa.tuple_(*order) > sa.tuple_(sa.literal(after[0], UTCDateTime()),
                                                                  sa.literal(after[1]), sa.literal(after[2])))
            batch = bind.execute(query).all()
            if not batch:
                break
            bind.execute(keys.insert(), [{"key": r.source + "\x1f" + r.event_id, "day": day} for r in batch])
            for r in batch:
                rows.append([r.source, r.event_id, r.account_id, r.type, r.user_id, r.feature, float(r.quantity),
                             (_utc(r.occurred_at) - EPOCH) // US])
                if len(rows) == PER_SEGMENT:
                    flush(rows)
                    rows = []
            last = batch[-1]
            after = (last.received_at, last.source, last.event_id)
        flush(rows)
    op.drop_index("ix_usage_events_day_account_id", table_name="usage_events")
    op.drop_table("usage_events")


def downgrade() -> None:
    _create_usage_events()
    bind = op.get_bind()
    decoder = msgspec.msgpack.Decoder(list[tuple[str, str, str, str, str, str | None, float, int]])
    after = 0
    while True:
        page = bind.execute(sa.select(segments.c.id, segments.c.day, segments.c.data, segments.c.created_at)
                            .where(segments.c.id > after).order_by(segments.c.id).limit(50)).all()
        if not page:
            break
        for seg_id, day, data, created_at in page:
            rows = [{"source": s, "event_id": i, "account_id": a, "type": t, "user_id": u, "feature": f,
                     "quantity": q, "occurred_at": EPOCH + dt.timedelta(microseconds=us), "day": day,
                     "received_at": _utc(created_at)}
                    for s, i, a, t, u, f, q, us in decoder.decode(zlib.decompress(data))]
            for start in range(0, len(rows), BATCH):
                bind.execute(events.insert(), rows[start:start + BATCH])
            after = seg_id
    op.drop_index("ix_usage_segments_day", table_name="usage_segments")
    op.drop_table("usage_segments")
    op.drop_table("usage_event_keys")
