"""Background loops: the health scorer."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from services.metrics.health.service import score_pending
from services.metrics.settings import Settings
from shared.app import ServiceContext

log = logging.getLogger("postsales.metrics.scheduler")


async def health_scorer(ctx: ServiceContext) -> None:
    """Re-score accounts whose inputs changed (marked by the consumers) and those gone stale."""
    settings = ctx.settings
    assert isinstance(settings, Settings)
    while not ctx.stopping.is_set():
        try:
            await score_pending(ctx, batch=settings.health_batch, refresh_seconds=settings.health_refresh_seconds)
        except Exception as exc:
            log.warning("health scoring pass failed (%s: %s); retrying next pass", type(exc).__name__, exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ctx.stopping.wait(), timeout=settings.health_interval)
