"""What a service is (:class:`ServiceDefinition`) and what a running one holds (:class:`ServiceContext`)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from typing_extensions import TypeVar

from shared.db import InfraTables
from shared.events.consumer import BatchHandler, Decoder, EventConsumer, EventHandler, OffsetStore
from shared.events.outbox import Outbox, OutboxRelay
from shared.observability import Metrics
from shared.settings import ServiceSettings

if TYPE_CHECKING:
    from shared.app.periodic import Periodic

# A bare ``ServiceContext`` is any service's context (the shared code's view).
SettingsT = TypeVar("SettingsT", bound=ServiceSettings, default=Any)
ExtensionT = TypeVar("ExtensionT", default=Any)


@dataclass(frozen=True)
class ConsumerSpec:
    """A consumer group a service runs: its name (the group id), topics and handler."""

    name: str
    topics: Sequence[str]
    handler: EventHandler | None = None
    batch_handler: BatchHandler | None = None
    batch_size: int | None = None
    batch_wait: float = 0.05  # seconds a fetched batch may wait to fill up to ``batch_size``
    # False only for a handler that is idempotent by itself (e.g. inserts keyed by source + id with
    # ON CONFLICT DO NOTHING): the foundation then skips its processed_events bookkeeping, and a batch
    # handler gets every message of a batch, a repeated source + id included.
    dedup: bool = True
    # A batch handler's own message decoder (raising InvalidEvent); default: CloudEvent + registry.
    decode: Decoder | None = None
    # Where progress is kept, built from the group id (the topic prefix + ``name``); default: the group's
    # Kafka commits. E.g. ``lambda group: DatabaseOffsets(table, ctx.session_factory, group)``.
    offsets: Callable[[str], OffsetStore] | None = None
    # Decode and plan batches of at least ``worker_min_batch`` messages in a worker process (a
    # RemotePlanner batch handler with dedup=False): the event loop's process then keeps one core for
    # fetching and the transaction.
    plan_in_worker: bool = False
    worker_min_batch: int = 1000
    # The service's clock, if it has one (tests and demos drive it): event times are bounded by it.
    clock: Callable[[], dt.datetime] | None = None


@dataclass
class ServiceContext(Generic[SettingsT, ExtensionT]):
    """Everything a running service holds; on ``app.state.ctx``.

    Typed by the service's settings and, for a service that builds its own long-lived objects at
    startup (the notifier's secret box, for instance), by the type of ``extension``: annotate a loop
    or dependency with ``ServiceContext[Settings, MyParts]`` and both are typed, without casts.
    """

    settings: SettingsT
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    infra: InfraTables
    outbox: Outbox
    metrics: Metrics
    extension: ExtensionT
    relay: OutboxRelay | None = None
    consumers: list[EventConsumer] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    consumer_specs: list[ConsumerSpec] = field(default_factory=list)
    producer: Any = None  # the connected AIOKafkaProducer (aiokafka is untyped)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def publish_soon(self) -> None:
        """Wake the outbox relay: events were just committed outside a request (a loop's pass)."""
        if self.relay is not None:
            self.relay.notify()


BackgroundLoop = Callable[[ServiceContext[Any, Any]], Awaitable[None]]
"""A long-running coroutine (a worker with its own wake-ups); restarted by the runtime if it crashes.
For work done every N seconds use :class:`shared.app.periodic.Periodic` instead."""

Startup = Callable[[ServiceContext[Any, Any]], Awaitable[Any]]
"""Builds the service's ``extension`` once the context exists (engine, outbox, settings)."""

ConsumerSpecs = Callable[[ServiceContext[Any, Any]], Sequence[ConsumerSpec]]
"""A service's ``consumers.consumer_specs(ctx)``: its consumer groups, built once the context exists so
that handlers can close over what they need (``ctx.settings``, ``ctx.outbox``, ``ctx.extension``)."""


@dataclass
class ServiceDefinition:
    """What makes a service: its name, routers, consumers and background loops."""

    name: str
    title: str
    description: str
    infra: InfraTables
    routers: Sequence[APIRouter]
    consumers: ConsumerSpecs | None = None
    loops: Sequence[Periodic | BackgroundLoop] = ()
    produces: Sequence[str] = ()
    version: str = "0.1.0"
    openapi_tags: list[dict[str, Any]] | None = None
    # Its return value becomes ``ctx.extension``.
    on_startup: Startup | None = None
