"""What a consumer's users see: handler and decoder types, the default decoder, ``PermanentError``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from aiokafka import ConsumerRecord, TopicPartition
from sqlalchemy.ext.asyncio import AsyncSession

from shared.events.envelope import CloudEvent, Envelope, InvalidEvent
from shared.events.registry import validate_event

EventHandler = Callable[[AsyncSession, CloudEvent], Awaitable[None]]
# A batch handler gets what the consumer's decoder returns: CloudEvents unless it has its own decoder.
BatchHandler = Callable[[AsyncSession, Sequence[Any]], Awaitable[None]]


class BatchPlan(Protocol):
    """What a :class:`BatchPlanner` makes of a batch before its transaction."""

    def add(self, events: Sequence[Any]) -> None:
        """Take in the next events of the batch (called a chunk at a time, in order)."""

    def complete(self) -> None:
        """Called once after the last ``add``: any CPU work left that needs no database."""


@runtime_checkable
class BatchPlanner(Protocol):
    """A batch handler in two steps, for a consumer whose CPU work per event matters.

    ``plan()`` and ``BatchPlan.add`` do the CPU work (no database, no awaiting). The consumer does it
    while the batch before is still in its transaction, a chunk at a time so that the event loop keeps
    serving that transaction. ``apply`` then writes the plan in the batch's own transaction; a plan may
    be applied again when that transaction is retried, so ``apply`` must not consume it. The consumer
    plans ahead only without its own dedup (``dedup=False``); otherwise, and for the halves of a failing
    batch, it plans inside the transaction. A planner is also a plain batch handler (``__call__``).
    """

    def plan(self) -> BatchPlan: ...

    async def apply(self, session: AsyncSession, plan: Any) -> None: ...

    async def __call__(self, session: AsyncSession, events: Sequence[Any]) -> None: ...


class ExportablePlan(BatchPlan, Protocol):
    def export(self) -> Any:
        """After ``complete``: what the plan's transaction needs, picklable (sent from a worker process)."""


@runtime_checkable
class RemotePlanner(BatchPlanner, Protocol):
    """A planner whose batches can be decoded and planned in a worker process (``plan_in_worker``).

    ``remote()`` gives a picklable callable (a module-level function) that makes a new plan in the
    worker, with no state of the consumer's process; the consumer ``adopt`` s the plan's export.
    """

    def remote(self) -> Callable[[], ExportablePlan]: ...

    def adopt(self, exported: Any) -> BatchPlan: ...


# (message value, logical topic) -> event. It raises InvalidEvent for a message that can never be handled;
# any other error it raises is dead-lettered the same way (a decoder bug must not stall the partition).
Decoder = Callable[[bytes | None, str], Envelope]


def decode_cloudevent(raw: bytes | None, topic: str) -> CloudEvent:
    """The default decoder: a CloudEvent whose type is registered for ``topic`` and whose data fits it."""
    event = CloudEvent.from_bytes(raw)
    validate_event(event, topic=topic)
    return event


class MaxAge:
    """A decoder that refuses events whose ``time`` is older than ``max_age`` (``MAX_EVENT_AGE``).

    A consumer with dedup keeps an event's key ``DEDUP_RETENTION`` after applying it, never less than
    ``MAX_EVENT_AGE``; an event applied no earlier than its own time therefore still has its key while it
    is younger than that. An older one might not, so a replay of it could be applied twice: it is refused.
    """

    def __init__(self, decode: Decoder, max_age: dt.timedelta) -> None:
        self.decode = decode
        self.max_age = max_age

    def __call__(self, raw: bytes | None, topic: str) -> Envelope:
        event = self.decode(raw, topic)
        at = getattr(event, "time", None)
        if isinstance(at, dt.datetime) and at < dt.datetime.now(dt.UTC) - self.max_age:
            age = self.max_age
            told = f"{age.days} days" if age % dt.timedelta(days=1) == dt.timedelta(0) else str(age)
            raise InvalidEvent(f"time: {at.isoformat()} is older than the maximum event age of {told} "
                               "(MAX_EVENT_AGE): a duplicate of it could no longer be recognised")
        return event


INVALID = "invalid event: "  # how the reason of a message the decoder refused starts (anything else: a decoder bug)


def rejection(exc: Exception) -> str:
    """Why a message the decoder raised on goes to the DLQ."""
    if isinstance(exc, InvalidEvent):
        return f"{INVALID}{exc}"
    return f"decoder failed: {type(exc).__name__}: {exc}"


class PermanentError(Exception):
    """Raised by a handler for an event that can never succeed: it goes to the DLQ without retries."""


@dataclass(slots=True)
class Delivery:
    """A message read from Kafka together with its parsed event (not frozen, because a frozen dataclass
    costs three times as much to build, once per consumed message).

    ``event`` is None for a batch planned in a worker process until the consumer needs it (to plan the
    halves of a failing batch again); it is then decoded once.
    """

    record: ConsumerRecord
    topic: str  # the logical topic (without the deployment prefix)
    event: Envelope | None
    partition: TopicPartition  # the record's, shared by every delivery of the partition in a batch
