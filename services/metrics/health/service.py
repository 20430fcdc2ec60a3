"""Health scoring: gather an account's inputs, score them with the current model, keep the
previous score for "what changed", and emit ``health.changed`` when (and only when) the band moves.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics.facts import repository as facts_repo
from services.metrics.feedback import repository as feedback_repo
from services.metrics.health import repository as repo
from services.metrics.health.model import (
    COMPONENTS,
    DEFAULT_BANDS,
    DEFAULT_WEIGHTS,
    DESCRIPTIONS,
    Inputs,
    Scored,
    combine,
    components,
)
from services.metrics.health.schemas import HealthModelIn
from services.metrics.models import HealthModel, HealthScore
from services.metrics.usage import repository as usage_repo
from shared.app import ServiceContext
from shared.db import utcnow
from shared.events.envelope import CloudEvent
from shared.events.outbox import Outbox

log = logging.getLogger("postsales.metrics.health")
SOURCE = "/services/metrics"


def _latest(*times: dt.datetime | None) -> dt.datetime | None:
    present = [t for t in times if t is not None]
    return max(present) if present else None


async def gather(session: AsyncSession, account_id: str, now: dt.datetime) -> tuple[Inputs, bool]:
    """The account's inputs, and whether anything at all is known about it."""
    today = now.date()
    account = await facts_repo.get_account(session, account_id)
    first_day, last_usage = await usage_repo.usage_bounds(session, account_id)
    users = await usage_repo.active_users(session, [account_id], today - dt.timedelta(days=29), today)
    recent, _ = await usage_repo.usage_summary(session, account_id, today - dt.timedelta(days=13), today)
    prior, _ = await usage_repo.usage_summary(session, account_id, today - dt.timedelta(days=27),
                                              today - dt.timedelta(days=14))
    surveys = await feedback_repo.account_surveys(session, account_id, now - dt.timedelta(days=180))
    tickets = await feedback_repo.account_tickets(session, account_id)
    commitments = await facts_repo.account_commitments(session, account_id)
    i = Inputs(
        now=now,
        seats=account.seats if account else None,
        renewal_date=account.renewal_date if account else None,
        last_touchpoint_at=account.last_touchpoint_at if account else None,
        has_usage=first_day is not None,
        active_users_30d=users.get(account_id, 0),
        events_recent_14d=recent,
        events_prior_14d=prior,
        nps_scores=[s.score for s in surveys if s.kind == "nps"],
        csat_scores=[s.score for s in surveys if s.kind == "csat"],
        tickets=[(t.opened_at, t.first_response_at, t.resolved_at) for t in tickets],
        commitments=[(c.status, c.due_date, c.delivered_at) for c in commitments],
    )
    i.as_of = _latest(last_usage, account.updated_at if account else None,
                      *(s.responded_at for s in surveys[-1:]), *(t.updated_at for t in tickets),
                      *(c.updated_at for c in commitments))
    known = account is not None or first_day is not None or bool(surveys) or bool(tickets) or bool(commitments)
    return i, known


async def current_model(session: AsyncSession) -> tuple[int, dict[str, float], dict[str, float]]:
    m = await repo.latest_model(session)
    if m is None:
        return 0, dict(DEFAULT_WEIGHTS), dict(DEFAULT_BANDS)
    return m.version, {k: float(v) for k, v in m.weights.items()}, {k: float(v) for k, v in m.bands.items()}


async def evaluate(session: AsyncSession, account_id: str, now: dt.datetime | None = None
                   ) -> tuple[Scored, Inputs, int, bool]:
    now = now or utcnow()
    inputs, known = await gather(session, account_id, now)
    version, weights, bands = await current_model(session)
    return combine(components(inputs), weights, bands), inputs, version, known


def _factors(scored: Scored) -> list[dict[str, Any]]:
    known = [c for c in scored.components if c["status"] == "known"]
    known.sort(key=lambda c: c["contribution"], reverse=True)
    return [{"name": c["name"], "value": c["value"], "contribution": c["contribution"]} for c in known]


async def score_account(session: AsyncSession, outbox: Outbox, account_id: str,
                        now: dt.datetime | None = None) -> HealthScore | None:
    """Re-score one account and store it; emits ``health.changed`` if its band changed."""
    now = now or utcnow()
    scored, inputs, version, known = await evaluate(session, account_id, now)
    if not known:
        return None
    row = await repo.get_score(session, account_id, for_update=True)
    old_score, old_band = (row.score, row.band) if row else (None, None)
    if row is None:
        row = HealthScore(account_id=account_id)
        session.add(row)
    elif row.score != scored.score:
        row.previous_score, row.previous_band = row.score, row.band
        row.previous_components, row.previous_computed_at = row.components, row.computed_at
    row.score, row.band, row.coverage = scored.score, scored.band, scored.coverage
    row.components, row.model_version = scored.components, version
    row.computed_at, row.as_of = now, inputs.as_of
    await session.flush()
    if scored.band is not None and scored.band != old_band:
        await outbox.add(session, CloudEvent.new(
            type="postsales.health.changed", source=SOURCE, subject=account_id, time=now,
            data={"account_id": account_id, "old_score": old_score, "new_score": scored.score,
                  "old_band": old_band, "new_band": scored.band, "coverage": scored.coverage,
                  "model_version": version, "factors": _factors(scored)}))
    return row


async def score_pending(ctx: ServiceContext, *, batch: int, refresh_seconds: float) -> int:
    """Score every account marked dirty (and those not scored for ``refresh_seconds``)."""
    done = 0
    while True:
        async with ctx.session_factory() as session, session.begin():
            now = utcnow()
            dirty = await repo.dirty_accounts(session, batch)
            stale = [] if dirty else await repo.stale_accounts(
                session, now - dt.timedelta(seconds=refresh_seconds), batch)
            for account_id, seen in dirty:
                await score_account(session, ctx.outbox, account_id, now)
                await repo.clear_dirty(session, account_id, seen)
            for account_id in stale:
                await score_account(session, ctx.outbox, account_id, now)
            wrote_events = bool(session.info.get("outbox_dirty"))
        if wrote_events and ctx.relay is not None:
            ctx.relay.notify()
        done += len(dirty) + len(stale)
        if len(dirty) < batch and len(stale) < batch:
            return done


def _model_out(version: int, weights: dict[str, float], bands: dict[str, float], created_at: dt.datetime | None,
               created_by: str | None) -> dict[str, Any]:
    return {"version": version, "weights": weights, "bands": bands, "created_at": created_at,
            "created_by": created_by, "components": [{"name": n, "description": DESCRIPTIONS[n]} for n in COMPONENTS]}


async def get_model(session: AsyncSession) -> dict[str, Any]:
    m = await repo.latest_model(session)
    if m is None:
        return _model_out(0, dict(DEFAULT_WEIGHTS), dict(DEFAULT_BANDS), None, None)
    return _model_out(m.version, m.weights, m.bands, m.created_at, m.created_by)


async def list_models(session: AsyncSession) -> list[dict[str, Any]]:
    stored = [_model_out(m.version, m.weights, m.bands, m.created_at, m.created_by)
              for m in await repo.model_versions(session)]
    return [*stored, _model_out(0, dict(DEFAULT_WEIGHTS), dict(DEFAULT_BANDS), None, None)]


async def put_model(session: AsyncSession, body: HealthModelIn, by: str) -> dict[str, Any]:
    version = await repo.max_model_version(session) + 1
    m = HealthModel(version=version, weights=body.weights.model_dump(), bands=body.bands.model_dump(),
                    created_at=utcnow(), created_by=by)
    session.add(m)
    await session.flush()
    # Every score now rests on an old model: queue them all for re-scoring.
    await repo.mark_dirty(session, await repo.all_scored_accounts(session))
    return _model_out(m.version, m.weights, m.bands, m.created_at, m.created_by)
