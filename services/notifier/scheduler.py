"""Background work: the notification pass over due alerts, the delivery worker, and maintenance
(retention purge, re-encryption of channel secrets after a key rotation)."""

from __future__ import annotations

import logging

from services.notifier import outbound
from services.notifier.alerts.service import notify_due
from services.notifier.channels.service import reencrypt_stale
from services.notifier.context import NotifierContext, engine_of
from services.notifier.deliveries.worker import DeliveryWorker
from services.notifier.retention import purge
from shared.app import BackgroundLoop, Periodic

log = logging.getLogger("postsales.notifier.scheduler")


async def notification_pass(ctx: NotifierContext) -> int:
    """Notify due alerts (group_wait elapsed, repeat due, escalation); how many were looked at."""
    async with ctx.session_factory() as session, session.begin():
        return await notify_due(session, ctx.extension.engine)


async def delivery_loop(ctx: NotifierContext) -> None:
    """Send due deliveries until the service stops (a worker with its own wake-ups, not a periodic pass)."""
    settings = ctx.settings
    async with outbound.client(ctx.extension.resolver, allow_link_local=settings.allow_link_local_targets,
                               timeout=settings.delivery_timeout) as client:
        worker = DeliveryWorker(settings=settings, session_factory=ctx.session_factory, box=ctx.extension.box,
                                client=client, wake=ctx.extension.engine.wake_deliveries, stopping=ctx.stopping)
        await worker.run()


async def maintenance_pass(ctx: NotifierContext) -> int:
    """Purge what is past retention and re-encrypt secrets not under the current key; rows touched."""
    settings = ctx.settings
    purged = await purge(ctx.session_factory, settings)
    for table, n in (("deliveries", purged.deliveries), ("delivery_attempts", purged.delivery_attempts),
                     ("alerts", purged.alerts)):
        if n:
            ctx.metrics.retention_purged.labels(table=table).inc(n)
    if purged.deliveries or purged.alerts:
        log.info("retention: purged %d alerts, %d deliveries, %d attempts",
                 purged.alerts, purged.deliveries, purged.delivery_attempts)
    async with ctx.session_factory() as session, session.begin():
        n = await reencrypt_stale(session, ctx.extension.box, settings.retention_batch_size)
    if n:
        ctx.extension.reencrypted.inc(n)
        log.info("re-encrypted %d channel secrets under the current key", n)
    return purged.deliveries + purged.alerts + n


LOOPS: list[Periodic | BackgroundLoop] = [
    Periodic("notification-pass", every="evaluation_interval", run=notification_pass, again_if_busy=True),
    delivery_loop,
    Periodic("notifier-maintenance", every="retention_interval", run=maintenance_pass),
]

__all__ = ["LOOPS", "delivery_loop", "engine_of", "maintenance_pass", "notification_pass"]
