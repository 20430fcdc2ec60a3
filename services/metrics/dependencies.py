"""Scopes of the metrics API, shared query parameters, typed settings and the connected producer."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated

from aiokafka import AIOKafkaProducer
from fastapi import Depends, Path, Query

from services.metrics.settings import Settings
from shared.app import ContextDep
from shared.app import SettingsDep as AppSettingsDep
from shared.auth import Principal, require
from shared.db import utcnow
from shared.errors import ServiceUnavailable, Unprocessable
from shared.types import BoundedDate

SettingsDep = AppSettingsDep[Settings]


async def connected_producer(ctx: ContextDep, settings: SettingsDep) -> AIOKafkaProducer:
    """The service's Kafka producer, once connected; 503 if it does not connect within the ingest deadline.

    It starts (and keeps retrying) in the background, so the first requests after a start may wait for it.
    """
    assert ctx.relay is not None  # built at startup, whatever the broker's state
    try:
        if not ctx.relay.started.is_set():
            await asyncio.wait_for(ctx.relay.started.wait(), timeout=settings.ingest_publish_timeout)
    except TimeoutError:
        raise ServiceUnavailable("the event bus is not reachable yet; retry later",
                                 headers={"Retry-After": "5"}) from None
    producer: AIOKafkaProducer = ctx.producer
    return producer


ProducerDep = Annotated[AIOKafkaProducer, Depends(connected_producer)]

ReadScope = Annotated[Principal, Depends(require("metrics:read"))]
IngestScope = Annotated[Principal, Depends(require("events:write"))]
AdminScope = Annotated[Principal, Depends(require("admin"))]

AccountId = Annotated[str, Path(min_length=1, max_length=200, description="The account id (event `subject`).")]
FromDate = Annotated[BoundedDate | None, Query(alias="from", description="First UTC day (inclusive).")]
ToDate = Annotated[BoundedDate | None, Query(alias="to", description="Last UTC day (inclusive); default today.")]

MAX_DAYS = 3660


def period(start: dt.date | None, end: dt.date | None, *, default_days: int) -> tuple[dt.date, dt.date]:
    """Resolve an inclusive ``from``/``to`` pair; 422 when reversed or too long."""
    end = end or utcnow().date()
    start = start or end - dt.timedelta(days=default_days - 1)
    if start > end:
        raise Unprocessable("'from' must not be after 'to'", errors=[{"loc": ["query", "from"],
                                                                       "msg": "after 'to'"}])
    if (end - start).days > MAX_DAYS:
        raise Unprocessable("the period may span at most 10 years",
                            errors=[{"loc": ["query", "from"], "msg": "period too long"}])
    return start, end
