"""Background loops: the overdue scan."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from services.handoff.commitments.service import scan_overdue
from services.handoff.settings import Settings
from shared.app import ServiceContext

log = logging.getLogger("postsales.handoff.scheduler")


async def overdue_loop(ctx: ServiceContext) -> None:
    """Every `overdue_check_interval` seconds, flag overdue commitments at_risk (once each)."""
    settings = ctx.settings
    assert isinstance(settings, Settings)
    while not ctx.stopping.is_set():
        try:
            flagged = await scan_overdue(ctx.session_factory, ctx.outbox, batch_size=settings.overdue_batch_size)
            if flagged:
                log.info("overdue scan: %d commitment(s) flagged at_risk", flagged)
                if ctx.relay is not None:
                    ctx.relay.notify()
        except Exception:
            log.exception("overdue scan failed; retrying next interval")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ctx.stopping.wait(), timeout=settings.overdue_check_interval)
