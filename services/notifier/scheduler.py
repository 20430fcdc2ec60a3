"""Background loops: the notification pass over due alerts, and the delivery worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import httpx

from services.notifier.alerts.service import Engine, notify_due
from services.notifier.crypto import SecretBox
from services.notifier.deliveries.worker import DeliveryWorker
from services.notifier.settings import Settings
from shared.app import ServiceContext

log = logging.getLogger("postsales.notifier.scheduler")


def engine_of(ctx: ServiceContext) -> Engine:
    engine: Engine = ctx.state["engine"]
    return engine


async def notification_loop(ctx: ServiceContext) -> None:
    """Every ``evaluation_interval``: notify due alerts (group_wait elapsed, repeat due, escalation)."""
    engine = engine_of(ctx)
    while not ctx.stopping.is_set():
        try:
            async with ctx.session_factory() as session, session.begin():
                looked = await notify_due(session, engine)
        except Exception:
            log.exception("notification pass failed; retrying")
            looked = 0
        if looked:
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ctx.stopping.wait(), timeout=engine.settings.evaluation_interval)


async def delivery_loop(ctx: ServiceContext) -> None:
    """Send due deliveries until the service stops."""
    settings = ctx.settings
    assert isinstance(settings, Settings)
    box: SecretBox = ctx.state["box"]
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=20)
    async with httpx.AsyncClient(limits=limits, follow_redirects=False) as client:
        worker = DeliveryWorker(settings=settings, session_factory=ctx.session_factory, box=box, client=client,
                                wake=engine_of(ctx).wake_deliveries, stopping=ctx.stopping)
        await worker.run()
