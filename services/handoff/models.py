"""Database models of the handoff service."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import TYPE_ANNOTATION_MAP, infra_tables, service_metadata, utcnow


class Base(DeclarativeBase):
    metadata = service_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


infra = infra_tables(Base.metadata)


class Handoff(Base):
    """A presales-to-postsales handoff of one won deal (one per CRM opportunity)."""

    __tablename__ = "handoffs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    crm_opportunity_id: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    account_external_id: Mapped[str] = mapped_column(String(200), index=True)
    account_name: Mapped[str] = mapped_column(String(300))
    account_segment: Mapped[str | None] = mapped_column(String(100), index=True)
    account_plan: Mapped[str | None] = mapped_column(String(100))
    account_seats: Mapped[int | None] = mapped_column(Integer)
    # Decimal money kept as its canonical string: exact on every backend.
    account_arr: Mapped[str | None] = mapped_column(String(40))
    account_currency: Mapped[str | None] = mapped_column(String(3))
    account_contract_start: Mapped[dt.date | None] = mapped_column(Date)
    account_renewal_date: Mapped[dt.date | None] = mapped_column(Date)
    challenges: Mapped[list[Any]]
    goals: Mapped[list[Any]]
    proposal: Mapped[str | None] = mapped_column(Text)
    demo_notes: Mapped[str | None] = mapped_column(Text)
    stakeholders: Mapped[list[Any]]
    risks: Mapped[list[Any]]
    no_commitments: Mapped[bool] = mapped_column(Boolean, default=False)
    presales_owner: Mapped[str | None] = mapped_column(String(200), index=True)
    postsales_owner: Mapped[str | None] = mapped_column(String(200), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    submitted_at: Mapped[dt.datetime | None]
    accepted_at: Mapped[dt.datetime | None]
    accepted_by: Mapped[str | None] = mapped_column(String(200))
    returned_at: Mapped[dt.datetime | None]
    return_reason: Mapped[str | None] = mapped_column(Text)


class HandoffTransition(Base):
    """One step of a handoff's workflow: who moved it, when and why."""

    __tablename__ = "handoff_transitions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    handoff_id: Mapped[str] = mapped_column(ForeignKey("handoffs.id", ondelete="CASCADE"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Commitment(Base):
    """A promise made before the contract: the ledger entry post-sales delivers against."""

    __tablename__ = "commitments"
    __table_args__ = (Index("ix_commitments_status_due_date", "status", "due_date"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    handoff_id: Mapped[str] = mapped_column(ForeignKey("handoffs.id", ondelete="CASCADE"), index=True)
    account_external_id: Mapped[str] = mapped_column(String(200), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    title: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    owner: Mapped[str | None] = mapped_column(String(200), index=True)
    due_date: Mapped[dt.date | None] = mapped_column(Date)
    description: Mapped[str | None] = mapped_column(Text)
    evidence: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[dt.datetime | None]
    # The due date the overdue scan already flagged, so it flags each due date once.
    overdue_flagged_due: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CommitmentChange(Base):
    """One change to a commitment (status, owner, due date, evidence, note) and what caused it."""

    __tablename__ = "commitment_changes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    commitment_id: Mapped[str] = mapped_column(ForeignKey("commitments.id", ondelete="CASCADE"), index=True)
    handoff_id: Mapped[str] = mapped_column(String(36))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    changes: Mapped[dict[str, Any]]
    note: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str | None] = mapped_column(String(200))
    cause: Mapped[str] = mapped_column(String(40))
    cause_ref: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Feedback(Base):
    """A note from post-sales back to presales about a handoff ("what the customer actually needed")."""

    __tablename__ = "handoff_feedback"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    handoff_id: Mapped[str] = mapped_column(ForeignKey("handoffs.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(30))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
