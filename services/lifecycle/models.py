"""Database models of the lifecycle service."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine

from shared.db import TYPE_ANNOTATION_MAP, BigIntPK, infra_tables, service_metadata, utcnow


class Base(DeclarativeBase):
    metadata = service_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


infra = infra_tables(Base.metadata)


CENT = Decimal("0.01")


def quantize_money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)


class Money(TypeDecorator[Decimal]):
    """An exact amount with two decimals: NUMERIC(18,2) on PostgreSQL, text on SQLite (which has no decimal)."""

    impl = Numeric(18, 2)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(40))
        return dialect.type_descriptor(Numeric(18, 2))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        amount = quantize_money(Decimal(value))
        return str(amount) if dialect.name == "sqlite" else amount

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else quantize_money(Decimal(str(value)))


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    segment: Mapped[str | None] = mapped_column(String(100), index=True)
    plan: Mapped[str | None] = mapped_column(String(100))
    stage: Mapped[str] = mapped_column(String(20), index=True)
    owner: Mapped[str | None] = mapped_column(String(200), index=True)
    seats: Mapped[int | None]
    arr: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(String(3))
    contract_start: Mapped[dt.date | None] = mapped_column(Date)
    renewal_date: Mapped[dt.date | None] = mapped_column(Date, index=True)
    handoff_id: Mapped[str | None] = mapped_column(String(200))
    crm_opportunity_id: Mapped[str | None] = mapped_column(String(200))
    onboarding_completed_at: Mapped[dt.datetime | None]
    stage_changed_at: Mapped[dt.datetime]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class StageChange(Base):
    __tablename__ = "stage_changes"
    __table_args__ = (UniqueConstraint("account_id", "seq"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    seq: Mapped[int] = mapped_column(doc="1, 2, … per account: the history's order even when times tie.")
    from_stage: Mapped[str | None] = mapped_column(String(20))
    to_stage: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[dt.datetime]


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("account_id", "milestone"),
        UniqueConstraint("account_id", "commitment_id"),
        Index("ix_tasks_status_due_date", "status", "due_date"),
        Index("ix_tasks_owner_due_date", "owner", "due_date"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # milestone | commitment | task
    milestone: Mapped[str | None] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    owner: Mapped[str | None] = mapped_column(String(200))
    due_date: Mapped[dt.date | None] = mapped_column(Date)
    commitment_id: Mapped[str | None] = mapped_column(String(200))
    handoff_id: Mapped[str | None] = mapped_column(String(200))
    playbook_run_id: Mapped[str | None] = mapped_column(ForeignKey("playbook_runs.id"), index=True)
    completed_at: Mapped[dt.datetime | None]
    overdue_notified_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Touchpoint(Base):
    __tablename__ = "touchpoints"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    notes: Mapped[str | None] = mapped_column(Text)
    attendees: Mapped[list[Any]]
    actor: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[dt.datetime]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Opportunity(Base):
    __tablename__ = "opportunities"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    title: Mapped[str | None] = mapped_column(String(300))
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(10))
    owner: Mapped[str | None] = mapped_column(String(200))
    notes: Mapped[str | None] = mapped_column(Text)
    expected_close_date: Mapped[dt.date | None] = mapped_column(Date)
    closed_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Renewal(Base):
    __tablename__ = "renewals"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    outcome: Mapped[str] = mapped_column(String(10))
    arr_before: Mapped[Decimal] = mapped_column(Money)
    arr_after: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(String(3))
    renewal_date: Mapped[dt.date | None] = mapped_column(Date)
    next_renewal_date: Mapped[dt.date | None] = mapped_column(Date)
    notes: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str | None] = mapped_column(String(200))
    recorded_at: Mapped[dt.datetime]


class RenewalWindowFired(Base):
    """One row per (account, renewal date, window): the scheduler's exactly-once ledger."""

    __tablename__ = "renewal_windows_fired"

    account_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    renewal_date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    window_days: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    fired_at: Mapped[dt.datetime]


class AccountHealth(Base):
    """The latest health from metrics; kept apart from accounts because it may arrive first."""

    __tablename__ = "account_health"

    account_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    score: Mapped[float] = mapped_column(Float)
    band: Mapped[str] = mapped_column(String(10), index=True)
    as_of: Mapped[dt.datetime]
    event_id: Mapped[str] = mapped_column(String(200))
    factors: Mapped[list[Any]]


class AccountRisk(Base):
    """The latest churn risk from metrics (``risk.changed``); like health, it may arrive first."""

    __tablename__ = "account_risk"

    account_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    probability: Mapped[float] = mapped_column(Float)
    band: Mapped[str] = mapped_column(String(10), index=True)
    as_of: Mapped[dt.datetime]
    event_id: Mapped[str] = mapped_column(String(200))
    drivers: Mapped[list[Any]]


class TimelineEntry(Base):
    __tablename__ = "timeline"
    __table_args__ = (Index("ix_timeline_account_id_occurred_at", "account_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(String(500))
    actor: Mapped[str | None] = mapped_column(String(200))
    event_id: Mapped[str | None] = mapped_column(String(200))
    data: Mapped[dict[str, Any]]
    occurred_at: Mapped[dt.datetime]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Playbook(Base):
    """A play: when an event matching ``event_type`` and ``conditions`` arrives, create ``tasks``."""

    __tablename__ = "playbooks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    event_type: Mapped[str] = mapped_column(String(200))
    conditions: Mapped[dict[str, Any]]
    tasks: Mapped[list[Any]]
    cooldown: Mapped[str] = mapped_column(String(20))
    enabled: Mapped[bool] = mapped_column(Boolean)
    builtin: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PlaybookRun(Base):
    """One run of a playbook on an account. ``active_key`` is set (to playbook:account) only while the
    run is active: its unique constraint is the "at most one active run" rule, on every backend."""

    __tablename__ = "playbook_runs"
    __table_args__ = (
        UniqueConstraint("playbook_id", "trigger_source", "trigger_event_id"),
        Index("ix_playbook_runs_playbook_id_account_id_ended_at", "playbook_id", "account_id", "ended_at"),
        Index("ix_playbook_runs_account_id_started_at", "account_id", "started_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # No foreign key: a deleted playbook's runs stay (with its name) as history.
    playbook_id: Mapped[str] = mapped_column(String(36))
    playbook_name: Mapped[str] = mapped_column(String(200))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    status: Mapped[str] = mapped_column(String(20))  # active | completed | cancelled
    active_key: Mapped[str | None] = mapped_column(String(300), unique=True)
    task_ids: Mapped[list[Any]]
    trigger_source: Mapped[str] = mapped_column(String(500))
    trigger_event_id: Mapped[str] = mapped_column(String(200))
    trigger_event_type: Mapped[str] = mapped_column(String(200))
    trigger_time: Mapped[dt.datetime]
    started_at: Mapped[dt.datetime]
    ended_at: Mapped[dt.datetime | None]
    health_band_start: Mapped[str | None] = mapped_column(String(10))
    health_band_end: Mapped[str | None] = mapped_column(String(10))
    risk_band_start: Mapped[str | None] = mapped_column(String(10))
    risk_band_end: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
