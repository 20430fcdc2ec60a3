"""What a consumer's users see: handler and decoder types, the default decoder, ``PermanentError``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from aiokafka import ConsumerRecord, TopicPartition
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import utcnow
from shared.events.envelope import CloudEvent, Envelope, InvalidEvent
from shared.events.registry import validate_event
from shared.settings import TimeBounds

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


class TimeGuard:
    """A decoder that refuses events whose ``time`` is out of ``bounds`` (``MAX_EVENT_AGE``,
    ``MAX_FUTURE_SKEW``), as the HTTP APIs refuse such times.

    It also keeps dedup exact: an event is applied no earlier than ``MAX_FUTURE_SKEW`` before its own time,
    and its key is kept at least ``MAX_EVENT_AGE`` + ``MAX_FUTURE_SKEW`` after that, so a replay still finds
    its key while the event is in bounds. Outside them, a replay could be applied twice.
    """

    def __init__(self, decode: Decoder, bounds: TimeBounds, now: Callable[[], dt.datetime] | None = None) -> None:
        self.decode = decode
        self.bounds = bounds
        self.now = now or utcnow  # a service's own clock, where it has one

    def __call__(self, raw: bytes | None, topic: str) -> Envelope:
        event = self.decode(raw, topic)
        at = getattr(event, "time", None)
        if isinstance(at, dt.datetime) and (problem := self.bounds.problem(at, self.now())):
            raise InvalidEvent(f"time: {problem}")
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
