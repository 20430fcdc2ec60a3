"""Periodic work: the health scorer, and the retention of usage dedup keys."""

from __future__ import annotations

from services.metrics.health.service import score_pending
from services.metrics.settings import Settings
from services.metrics.usage.service import purge_usage_keys
from shared.app import Periodic, ServiceContext


async def health_pass(ctx: ServiceContext[Settings]) -> int:
    """Re-score accounts whose inputs changed (marked by the consumers) and those gone stale."""
    s = ctx.settings
    return await score_pending(ctx, batch=s.health_batch, refresh_seconds=s.health_refresh_seconds)


LOOPS = [Periodic("health-scorer", every="health_interval", run=health_pass),
         Periodic("usage-key-retention", every="retention_interval", run=purge_usage_keys)]
