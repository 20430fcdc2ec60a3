"""Background work: the notification pass over due alerts, and the delivery worker."""

from __future__ import annotations

import httpx

from services.notifier.alerts.service import notify_due
from services.notifier.context import NotifierContext, engine_of
from services.notifier.deliveries.worker import DeliveryWorker
from shared.app import BackgroundLoop, Periodic


async def notification_pass(ctx: NotifierContext) -> int:
    """Notify due alerts (group_wait elapsed, repeat due, escalation); how many were looked at."""
    async with ctx.session_factory() as session, session.begin():
        return await notify_due(session, ctx.extension.engine)


async def delivery_loop(ctx: NotifierContext) -> None:
    """Send due deliveries until the service stops (a worker with its own wake-ups, not a periodic pass)."""
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=20)
    async with httpx.AsyncClient(limits=limits, follow_redirects=False) as client:
        worker = DeliveryWorker(settings=ctx.settings, session_factory=ctx.session_factory, box=ctx.extension.box,
                                client=client, wake=ctx.extension.engine.wake_deliveries, stopping=ctx.stopping)
        await worker.run()


LOOPS: list[Periodic | BackgroundLoop] = [
    Periodic("notification-pass", every="evaluation_interval", run=notification_pass, again_if_busy=True),
    delivery_loop,
]

__all__ = ["LOOPS", "delivery_loop", "engine_of", "notification_pass"]
