"""Database models of the metrics service.

Raw usage events are append-only, stored per transaction and day in compressed segments; their
dedup keys (source + id) in a narrow table of their own. Rollups are kept incrementally (one upsert
per batch) and can be rebuilt from the segments.
Money is stored as decimal strings and summed in Python with ``Decimal``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Float, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import TYPE_ANNOTATION_MAP, infra_tables, service_metadata
from shared.events.consumer.offsets import consumer_offsets_table


class Base(DeclarativeBase):
    metadata = service_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


infra = infra_tables(Base.metadata)
# The usage consumer's offsets, written in the same transaction as its batches (shared.events.consumer).
consumer_offsets = consumer_offsets_table(Base.metadata)

ID = 200  # the longest id we accept (account ids, user ids, features, ticket ids)


class UsageEventKey(Base):
    """The dedup key of every usage event counted: ``source + "\\x1f" + id`` (``day`` is for retention only)."""

    __tablename__ = "usage_event_keys"
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    day: Mapped[dt.date]

    # The key is the whole row: on SQLite a WITHOUT ROWID table stores it once, in one B-tree.
    __table_args__ = {"sqlite_with_rowid": False}


class UsageSegment(Base):
    """The new usage events of one transaction and one UTC day, as received (the source of truth for recompute).

    ``data`` is ``zlib(msgpack([[source, id, account_id, type, user_id, feature, quantity, time_us], …]))``
    in arrival order (see ``services.metrics.usage.segments``); ``offsets`` the Kafka offset range the
    transaction covered, ``{"topic:partition": [first, last]}`` (null for migrated rows).
    """

    __tablename__ = "usage_segments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    day: Mapped[dt.date] = mapped_column(index=True)
    event_count: Mapped[int] = mapped_column(Integer)
    offsets: Mapped[dict[str, Any] | None]
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime]


class UsageDaily(Base):
    __tablename__ = "usage_daily"
    account_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    day: Mapped[dt.date] = mapped_column(primary_key=True)
    events: Mapped[float] = mapped_column(Float)
    event_count: Mapped[int] = mapped_column(Integer)
    active_users: Mapped[int] = mapped_column(Integer)
    last_at: Mapped[dt.datetime] = mapped_column(comment="time of the latest event counted that day")


class UsageDailyType(Base):
    __tablename__ = "usage_daily_types"
    account_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    day: Mapped[dt.date] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(200), primary_key=True)
    events: Mapped[float] = mapped_column(Float)


class UsageDailyFeature(Base):
    __tablename__ = "usage_daily_features"
    account_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    day: Mapped[dt.date] = mapped_column(primary_key=True)
    feature: Mapped[str] = mapped_column(String(ID), primary_key=True)
    events: Mapped[float] = mapped_column(Float)


class UsageDailyUser(Base):
    """Who was active on a day; inserting with ON CONFLICT DO NOTHING counts each user once."""

    __tablename__ = "usage_daily_users"
    account_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    day: Mapped[dt.date] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(String(ID), primary_key=True)


class Survey(Base):
    __tablename__ = "surveys"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    source: Mapped[str] = mapped_column(String(500))
    event_id: Mapped[str] = mapped_column(String(200))
    account_id: Mapped[str] = mapped_column(String(ID), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    score: Mapped[int] = mapped_column(Integer)
    respondent: Mapped[str | None] = mapped_column(String(320))
    comment: Mapped[str | None] = mapped_column(Text)
    responded_at: Mapped[dt.datetime] = mapped_column(index=True)

    __table_args__ = (UniqueConstraint("source", "event_id"),)


class Ticket(Base):
    __tablename__ = "tickets"
    ticket_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(ID), index=True)
    opened_at: Mapped[dt.datetime | None]
    first_response_at: Mapped[dt.datetime | None]
    resolved_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime]


class Account(Base):
    """What metrics knows of an account, from lifecycle and handoff events."""

    __tablename__ = "accounts"
    account_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(500))
    segment: Mapped[str | None] = mapped_column(String(100))
    owner: Mapped[str | None] = mapped_column(String(320))
    stage: Mapped[str | None] = mapped_column(String(50))
    seats: Mapped[int | None] = mapped_column(Integer)
    arr: Mapped[str | None] = mapped_column(String(40))
    currency: Mapped[str | None] = mapped_column(String(3))
    contract_start: Mapped[dt.date | None]
    renewal_date: Mapped[dt.date | None]
    planned_go_live: Mapped[dt.date | None]
    created_at: Mapped[dt.datetime | None]
    churned_at: Mapped[dt.datetime | None]
    onboarding_completed_at: Mapped[dt.datetime | None]
    last_touchpoint_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime]


class Renewal(Base):
    __tablename__ = "renewals"
    account_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    renewal_date: Mapped[dt.date] = mapped_column(primary_key=True)
    outcome: Mapped[str] = mapped_column(String(20))
    arr_before: Mapped[str] = mapped_column(String(40))
    arr_after: Mapped[str] = mapped_column(String(40))
    currency: Mapped[str | None] = mapped_column(String(3))
    recorded_at: Mapped[dt.datetime]


class Opportunity(Base):
    __tablename__ = "opportunities"
    opportunity_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(ID), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    amount: Mapped[str] = mapped_column(String(40))
    currency: Mapped[str | None] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(20))
    won_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime]


class Commitment(Base):
    __tablename__ = "commitments"
    commitment_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(ID), index=True)
    handoff_id: Mapped[str | None] = mapped_column(String(ID))
    title: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(20))
    due_date: Mapped[dt.date | None]
    delivered_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime]


class HealthModel(Base):
    __tablename__ = "health_models"
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    weights: Mapped[dict[str, Any]]
    bands: Mapped[dict[str, Any]]
    thresholds: Mapped[dict[str, Any] | None]  # null: the defaults of the time (versions before thresholds)
    created_at: Mapped[dt.datetime]
    created_by: Mapped[str | None] = mapped_column(String(100))


class HealthScore(Base):
    """The latest score of an account, and the one before it (for "what changed and why")."""

    __tablename__ = "health_scores"
    account_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    score: Mapped[float | None] = mapped_column(Float)
    band: Mapped[str | None] = mapped_column(String(10))
    coverage: Mapped[float] = mapped_column(Float)
    components: Mapped[list[Any]]
    model_version: Mapped[int] = mapped_column(Integer)
    computed_at: Mapped[dt.datetime]
    as_of: Mapped[dt.datetime | None]
    previous_score: Mapped[float | None] = mapped_column(Float)
    previous_band: Mapped[str | None] = mapped_column(String(10))
    previous_components: Mapped[list[Any] | None]
    previous_computed_at: Mapped[dt.datetime | None]
    band_reason: Mapped[str | None] = mapped_column(String(500))
    # The last score sent downstream in health.changed: what lifecycle and the notifier hold.
    emitted_score: Mapped[float | None] = mapped_column(Float)
    emitted_band: Mapped[str | None] = mapped_column(String(10))
    emitted_components: Mapped[list[Any] | None]
    emitted_at: Mapped[dt.datetime | None]


class HealthDirty(Base):
    """Accounts whose inputs changed since their last score; the scorer drains this table."""

    __tablename__ = "health_dirty"
    account_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    marked_at: Mapped[dt.datetime]


class FactHistory(Base):
    """Every account fact as it arrived, with when it happened: what the churn-risk features read as of
    a past date (the tables above keep only the latest values; a renewed account's moved renewal date
    would otherwise leak its outcome). ``seq`` is the arrival order."""

    __tablename__ = "fact_history"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(200), unique=True)
    account_id: Mapped[str] = mapped_column(String(ID), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    at: Mapped[dt.datetime]
    data: Mapped[dict[str, Any]]


class RiskModel(Base):
    """A trained churn-risk model: a standardised logistic regression kept as plain JSON."""

    __tablename__ = "risk_models"
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    trained_at: Mapped[dt.datetime]
    trained_by: Mapped[str | None] = mapped_column(String(100))
    horizon_days: Mapped[int] = mapped_column(Integer)
    features: Mapped[list[Any]]
    params: Mapped[dict[str, Any]] = mapped_column(comment="coefficients, intercept, scaler means/scales, fill values")
    backtest: Mapped[dict[str, Any]]


class RiskScore(Base):
    """The latest churn-risk score of an account, with the fields the worklist filters and orders by."""

    __tablename__ = "risk_scores"
    account_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    probability: Mapped[float] = mapped_column(Float)
    band: Mapped[str] = mapped_column(String(10))
    drivers: Mapped[list[Any]]
    model_version: Mapped[int] = mapped_column(Integer)
    horizon_days: Mapped[int] = mapped_column(Integer)
    as_of: Mapped[dt.datetime]
    arr: Mapped[str | None] = mapped_column(String(40))
    arr_at_risk: Mapped[float] = mapped_column(Float, index=True)
    owner: Mapped[str | None] = mapped_column(String(320))
    segment: Mapped[str | None] = mapped_column(String(100))
    renewal_date: Mapped[dt.date | None]
    previous_band: Mapped[str | None] = mapped_column(String(10))
    previous_probability: Mapped[float | None] = mapped_column(Float)
