"""What a consumer's users see: handler and decoder types, the default decoder, ``PermanentError``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import ConsumerRecord
from sqlalchemy.ext.asyncio import AsyncSession

from shared.events.envelope import CloudEvent, Envelope
from shared.events.registry import validate_event

EventHandler = Callable[[AsyncSession, CloudEvent], Awaitable[None]]
# A batch handler gets what the consumer's decoder returns: CloudEvents unless it has its own decoder.
BatchHandler = Callable[[AsyncSession, Sequence[Any]], Awaitable[None]]
# (message value, logical topic) -> event. It raises InvalidEvent for a message that can never be handled;
# any other error it raises is dead-lettered the same way (a decoder bug must not stall the partition).
Decoder = Callable[[bytes | None, str], Envelope]


def decode_cloudevent(raw: bytes | None, topic: str) -> CloudEvent:
    """The default decoder: a CloudEvent whose type is registered for ``topic`` and whose data fits it."""
    event = CloudEvent.from_bytes(raw)
    validate_event(event, topic=topic)
    return event


class PermanentError(Exception):
    """Raised by a handler for an event that can never succeed: it goes to the DLQ without retries."""


@dataclass(frozen=True)
class Delivery:
    """A message read from Kafka together with its parsed event."""

    record: ConsumerRecord
    topic: str  # the logical topic (without the deployment prefix)
    event: Envelope
