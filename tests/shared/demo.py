"""A tiny service built only from ``shared``, to test the foundation without any domain."""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy import ForeignKey, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.app import ConsumerSpec, ServiceDefinition, SessionDep, get_ctx
from shared.auth import require
from shared.db import TYPE_ANNOTATION_MAP, infra_tables, service_metadata, utcnow
from shared.errors import NotFound, problems
from shared.events import CloudEvent
from shared.events.consumer import PermanentError
from shared.events.registry import LIFECYCLE_TOPIC
from shared.http import Cursor, Idempotency, Limit, Page, idempotency_dependency, keyset_page


class Base(DeclarativeBase):
    metadata = service_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


infra = infra_tables(Base.metadata)


class Note(Base):
    __tablename__ = "demo_notes"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Applied(Base):
    __tablename__ = "demo_applied"
    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int | None] = mapped_column(default=None)


class Child(Base):
    __tablename__ = "demo_children"
    id: Mapped[int] = mapped_column(primary_key=True)
    note_id: Mapped[str] = mapped_column(ForeignKey("demo_notes.id"))


class NoteIn(BaseModel):
    id: str = Field(min_length=1, max_length=64)
    account_id: str = Field(min_length=1, max_length=64)
    text: str = Field(min_length=1, max_length=500)


class NoteOut(NoteIn):
    created_at: dt.datetime


IdempotencyDep = Annotated[Idempotency, idempotency_dependency(infra.idempotency_keys)]
router = APIRouter(prefix="/v1")


@router.post("/notes", status_code=201, response_model=NoteOut, responses=problems(409),
             dependencies=[Depends(require("handoff:write"))])
async def create_note(body: NoteIn, session: SessionDep, idem: IdempotencyDep,
                      ctx: Annotated[object, Depends(get_ctx)]) -> NoteOut:
    """Create a note and emit an event for it."""
    await idem.check(session)
    note = Note(id=body.id, account_id=body.account_id, text=body.text, created_at=utcnow())
    session.add(note)
    await session.flush()
    event = CloudEvent.new(type="postsales.account.updated", source="/demo", subject=body.account_id,
                           data={"account_id": body.account_id, "name": body.text})
    await get_ctx_outbox(ctx).add(session, event)
    out = NoteOut(id=note.id, account_id=note.account_id, text=note.text, created_at=note.created_at)
    await idem.save(session, 201, out)
    return out


def get_ctx_outbox(ctx: object) -> object:
    return ctx.outbox  # type: ignore[attr-defined]


@router.get("/notes", response_model=Page[NoteOut], dependencies=[Depends(require("handoff:read"))])
async def list_notes(session: SessionDep, limit: Limit = 50, cursor: Cursor = None) -> Page[NoteOut]:
    """List notes, newest first."""
    rows, nxt = await keyset_page(session, select(Note), order_by=[Note.created_at, Note.id],
                                  cursor=cursor, limit=limit)
    return Page[NoteOut](items=[NoteOut.model_validate(r, from_attributes=True) for r in rows], next_cursor=nxt)


@router.get("/notes/{note_id}", response_model=NoteOut, responses=problems(404),
            dependencies=[Depends(require("handoff:read"))])
async def get_note(note_id: str, session: SessionDep) -> NoteOut:
    """Read one note."""
    note = await session.get(Note, note_id)
    if note is None:
        raise NotFound(f"note {note_id} does not exist")
    return NoteOut.model_validate(note, from_attributes=True)


POISON_NAME = "poison"


async def apply_event(session: AsyncSession, event: CloudEvent) -> None:
    if event.data.get("name") == POISON_NAME:
        raise RuntimeError("this event always fails")
    if event.data.get("name") == "permanent":
        raise PermanentError("cannot ever apply")
    session.add(Applied(event_id=event.id, account_id=event.subject, seq=event.data.get("seats")))


async def apply_batch(session: AsyncSession, events: Sequence[CloudEvent]) -> None:
    for ev in events:
        await apply_event(session, ev)


UNPLANNABLE_NAME = "unplannable"


class DemoPlan:
    def __init__(self) -> None:
        self.events: list[CloudEvent] = []
        # Made while the consumer decoded the batch (ahead), or in the batch's transaction.
        self.ahead = any(f.function == "_decode" for f in inspect.stack(0))

    def add(self, events: Sequence[CloudEvent]) -> None:
        for ev in events:
            if ev.data.get("name") == UNPLANNABLE_NAME:
                raise ValueError("this event cannot be planned")
        self.events.extend(events)

    def complete(self) -> None:
        pass


class DemoPlanner:
    """A ``BatchPlanner`` (the consumer plans ahead: it runs without dedup, so its events must not repeat)."""

    def __init__(self) -> None:
        self.applied_plans: list[DemoPlan] = []

    def plan(self) -> DemoPlan:
        return DemoPlan()

    async def apply(self, session: AsyncSession, plan: DemoPlan) -> None:
        await apply_batch(session, plan.events)
        self.applied_plans.append(plan)

    async def __call__(self, session: AsyncSession, events: Sequence[CloudEvent]) -> None:
        await apply_batch(session, events)


def definition(*, batch: bool = False, consumer_name: str = "demo-consumer",
               planner: DemoPlanner | None = None) -> ServiceDefinition:
    spec = (ConsumerSpec(consumer_name, [LIFECYCLE_TOPIC], batch_handler=planner, dedup=False) if planner
            else ConsumerSpec(consumer_name, [LIFECYCLE_TOPIC], batch_handler=apply_batch) if batch
            else ConsumerSpec(consumer_name, [LIFECYCLE_TOPIC], handler=apply_event))
    return ServiceDefinition(name="demo", title="Demo", description="Foundation test app", infra=infra,
                             routers=[router], consumers=lambda ctx: [spec])
