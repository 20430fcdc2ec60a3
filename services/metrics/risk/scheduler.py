"""The risk schedule: score every active account daily, retrain the current model weekly."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from services.metrics.risk import repository as repo
from services.metrics.risk import service
from services.metrics.risk.endpoints import config_of
from services.metrics.settings import Settings
from shared.app import Periodic, ServiceContext
from shared.db import utcnow
from shared.errors import PostsalesError

log = logging.getLogger("postsales.metrics.risk")


async def risk_pass(ctx: ServiceContext[Settings, Any], now: dt.datetime | None = None) -> str | None:
    """One check: retrain a model past its age, or rescore when the last scoring is a day old."""
    settings = ctx.settings
    now = now or utcnow()
    config = config_of(settings)
    async with ctx.session_factory() as session, session.begin():
        model = await repo.latest_model(session)
        if model is None:
            return None  # the first model is an admin's decision (it needs enough churned history)
        if (now - model.trained_at).total_seconds() >= settings.risk_retrain_interval:
            try:
                async with session.begin_nested():
                    await service.train(session, ctx.outbox, horizon=model.horizon_days, cutoff=None,
                                        by="schedule", config=config, now=now)
                done = "retrained"
            except PostsalesError as exc:
                log.warning("scheduled risk retraining skipped: %s", exc.detail)
                await service.score_all(session, ctx.outbox, model=model, config=config, now=now)
                done = "scored"
        else:
            last = await repo.last_scored_at(session)
            if last is not None and (now - last).total_seconds() < settings.risk_score_interval:
                return None
            await service.score_all(session, ctx.outbox, model=model, config=config, now=now)
            done = "scored"
        wrote = bool(session.info.get("outbox_dirty"))
    if wrote:
        ctx.publish_soon()
    return done


RISK_LOOP = Periodic("risk-schedule", every="risk_check_interval", run=risk_pass)
