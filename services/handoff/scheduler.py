"""Periodic work: the overdue scan."""

from __future__ import annotations

import logging

from services.handoff.commitments.service import scan_overdue
from services.handoff.settings import Settings
from shared.app import Periodic, ServiceContext

log = logging.getLogger("postsales.handoff.scheduler")


async def overdue_scan(ctx: ServiceContext[Settings]) -> int:
    """Flag overdue commitments at_risk (once each)."""
    flagged = await scan_overdue(ctx.session_factory, ctx.outbox, batch_size=ctx.settings.overdue_batch_size)
    if flagged:
        log.info("overdue scan: %d commitment(s) flagged at_risk", flagged)
        ctx.publish_soon()
    return flagged


LOOPS = [Periodic("overdue-scan", every="overdue_check_interval", run=overdue_scan)]
