"""Database models of the notifier service."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import TYPE_ANNOTATION_MAP, JSONType, infra_tables, service_metadata


class Base(DeclarativeBase):
    metadata = service_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


infra = infra_tables(Base.metadata)


class Channel(Base):
    """Where notifications go. ``config`` never holds secrets; those are in ``secret_enc`` (encrypted)."""

    __tablename__ = "channels"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    config: Mapped[dict[str, Any]]
    secret_enc: Mapped[str | None] = mapped_column(Text)
    lang: Mapped[str | None] = mapped_column(String(5))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class Rule(Base):
    __tablename__ = "rules"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    event_type: Mapped[str] = mapped_column(String(200))
    conditions: Mapped[dict[str, Any]]
    severity: Mapped[str] = mapped_column(String(20))
    channels: Mapped[list[Any]]
    group_by: Mapped[list[Any]]
    group_wait: Mapped[str] = mapped_column(String(20))
    repeat_interval: Mapped[str] = mapped_column(String(20))
    escalation: Mapped[dict[str, Any] | None]
    # One ``{event_type, conditions, scope}`` object or a list of them.
    resolve_when: Mapped[Any] = mapped_column(JSONType, nullable=True)
    inhibits: Mapped[dict[str, Any] | None]
    lang: Mapped[str | None] = mapped_column(String(5))
    summary: Mapped[dict[str, Any] | None]
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class AccountState(Base):
    """What the notifier last heard about an account (for ``account.*`` paths in conditions)."""

    __tablename__ = "account_states"
    account_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(500))
    owner: Mapped[str | None] = mapped_column(String(200))
    stage: Mapped[str | None] = mapped_column(String(50))
    stage_at: Mapped[dt.datetime | None]
    health_band: Mapped[str | None] = mapped_column(String(20))
    health_score: Mapped[float | None]
    health_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime]


class Alert(Base):
    """One alert per fingerprint while active; ``active_key`` (= fingerprint, NULL once resolved) is
    unique, so concurrent consumers cannot open the same alert twice."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_status_next_notify_at", "status", "next_notify_at"),
        Index("ix_alerts_created_at_id", "created_at", "id"),
        Index("ix_alerts_status_resolved_at", "status", "resolved_at"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    active_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    rule_id: Mapped[str] = mapped_column(String(36), index=True)
    rule_name: Mapped[str] = mapped_column(String(200))
    severity: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    labels: Mapped[dict[str, Any]]
    subject: Mapped[str] = mapped_column(String(200), index=True)
    summary: Mapped[str] = mapped_column(Text)
    event_count: Mapped[int] = mapped_column(Integer, default=1)
    last_event: Mapped[dict[str, Any]]
    starts_at: Mapped[dt.datetime]
    last_event_at: Mapped[dt.datetime]
    next_notify_at: Mapped[dt.datetime | None]
    last_notified_at: Mapped[dt.datetime | None]
    notify_count: Mapped[int] = mapped_column(Integer, default=0)
    suppressed_by: Mapped[str | None] = mapped_column(String(200))
    escalated_at: Mapped[dt.datetime | None]
    acknowledged_at: Mapped[dt.datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    acknowledged_note: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[dt.datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(200))
    resolution: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class Silence(Base):
    __tablename__ = "silences"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    matchers: Mapped[list[Any]]
    created_by: Mapped[str] = mapped_column(String(200))
    comment: Mapped[str] = mapped_column(Text)
    starts_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime] = mapped_column(index=True)
    created_at: Mapped[dt.datetime]


class Delivery(Base):
    """One notification of one alert to one channel. ``payload`` is rendered once, so every retry
    sends the same body under the same ``webhook-id`` (the delivery id)."""

    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ix_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_deliveries_created_at_id", "created_at", "id"),
        Index("ix_deliveries_status_updated_at", "status", "updated_at"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    alert_id: Mapped[str] = mapped_column(String(36), index=True)
    channel_id: Mapped[str] = mapped_column(String(36), index=True)
    channel_kind: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    payload: Mapped[dict[str, Any]]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime]
    claimed_until: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class DeliveryAttempt(Base):
    """Written (outcome ``sending``) before the send; a row still ``sending`` after its lease means
    the process died mid-send and is closed as ``abandoned`` before the next attempt."""

    __tablename__ = "delivery_attempts"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    delivery_id: Mapped[str] = mapped_column(String(36), index=True)
    number: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(20))
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime | None]
