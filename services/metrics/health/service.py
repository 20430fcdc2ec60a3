"""Health scoring: gather an account's inputs, score them with the current model, keep the
previous score for "what changed", and emit ``health.changed`` when (and only when) the band moves.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics.facts import repository as facts_repo
from services.metrics.feedback import repository as feedback_repo
from services.metrics.health import repository as repo
from services.metrics.health.schemas import HealthModelIn
from services.metrics.health.scoring import (
    COMPONENTS,
    DEFAULT_BANDS,
    DEFAULT_WEIGHTS,
    DESCRIPTIONS,
    Inputs,
    Scored,
    combine,
    components,
)
from services.metrics.models import Commitment, HealthModel, HealthScore, Survey, Ticket
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


async def gather(session: AsyncSession, account_ids: list[str], now: dt.datetime) -> dict[str, Inputs]:
    """The inputs of each account anything is known about (set-based: a few queries for all of them)."""
    today = now.date()
    accounts = await facts_repo.accounts_by_id(session, account_ids)
    last_usage = await usage_repo.last_usage(session, account_ids)
    users = await usage_repo.active_users(session, account_ids, today - dt.timedelta(days=29), today)
    recent: dict[str, float] = defaultdict(float)
    prior: dict[str, float] = defaultdict(float)
    for a, day, events in await usage_repo.recent_days(session, account_ids, today - dt.timedelta(days=27)):
        (recent if day >= today - dt.timedelta(days=13) else prior)[a] += events
    surveys: dict[str, list[Survey]] = defaultdict(list)
    for sv in await feedback_repo.surveys_for(session, account_ids, now - dt.timedelta(days=180)):
        surveys[sv.account_id].append(sv)
    tickets: dict[str, list[Ticket]] = defaultdict(list)
    for t in await feedback_repo.tickets_for(session, account_ids, now - dt.timedelta(days=90)):
        tickets[t.account_id].append(t)
    commitments: dict[str, list[Commitment]] = defaultdict(list)
    for c in await facts_repo.commitments_for(session, account_ids):
        commitments[c.account_id].append(c)
    out: dict[str, Inputs] = {}
    for a in account_ids:
        account = accounts.get(a)
        if account is None and a not in last_usage and not surveys[a] and not tickets[a] and not commitments[a]:
            continue
        out[a] = Inputs(
            now=now,
            seats=account.seats if account else None,
            renewal_date=account.renewal_date if account else None,
            last_touchpoint_at=account.last_touchpoint_at if account else None,
            has_usage=a in last_usage,
            active_users_30d=users.get(a, 0),
            events_recent_14d=recent[a],
            events_prior_14d=prior[a],
            nps_scores=[sv.score for sv in surveys[a] if sv.kind == "nps"],
            csat_scores=[sv.score for sv in surveys[a] if sv.kind == "csat"],
            tickets=[(t.opened_at, t.first_response_at, t.resolved_at) for t in tickets[a]],
            commitments=[(c.status, c.due_date, c.delivered_at) for c in commitments[a]],
            as_of=_latest(last_usage.get(a), account.updated_at if account else None,
                          *(sv.responded_at for sv in surveys[a][-1:]), *(t.updated_at for t in tickets[a]),
                          *(c.updated_at for c in commitments[a])),
        )
    return out


async def current_model(session: AsyncSession) -> tuple[int, dict[str, float], dict[str, float]]:
    m = await repo.latest_model(session)
    if m is None:
        return 0, dict(DEFAULT_WEIGHTS), dict(DEFAULT_BANDS)
    return m.version, {k: float(v) for k, v in m.weights.items()}, {k: float(v) for k, v in m.bands.items()}


async def evaluate(session: AsyncSession, account_ids: list[str], now: dt.datetime
                   ) -> tuple[dict[str, tuple[Scored, Inputs]], int]:
    """Score accounts with the current model (without storing); unknown accounts are left out."""
    inputs = await gather(session, account_ids, now)
    version, weights, bands = await current_model(session)
    return {a: (combine(components(i), weights, bands), i) for a, i in inputs.items()}, version


def _factors(scored: Scored) -> list[dict[str, Any]]:
    known = [c for c in scored.components if c["status"] == "known"]
    known.sort(key=lambda c: c["contribution"], reverse=True)
    return [{"name": c["name"], "value": c["value"], "contribution": c["contribution"]} for c in known]


async def score_accounts(session: AsyncSession, outbox: Outbox, account_ids: list[str],
                         now: dt.datetime | None = None) -> None:
    """Re-score accounts and store the scores; emits ``health.changed`` for each band that moved."""
    now = now or utcnow()
    scored, version = await evaluate(session, account_ids, now)
    if not scored:
        return
    stored = await repo.scores_for(session, list(scored))
    for account_id, (result, inputs) in scored.items():
        row = stored.get(account_id)
        old_score, old_band = (row.score, row.band) if row else (None, None)
        if row is None:
            row = HealthScore(account_id=account_id)
            session.add(row)
        elif row.score != result.score:
            row.previous_score, row.previous_band = row.score, row.band
            row.previous_components, row.previous_computed_at = row.components, row.computed_at
        row.score, row.band, row.coverage = result.score, result.band, result.coverage
        row.components, row.model_version = result.components, version
        row.computed_at, row.as_of = now, inputs.as_of
        if result.band is not None and result.band != old_band:
            await outbox.add(session, CloudEvent.new(
                type="postsales.health.changed", source=SOURCE, subject=account_id, time=now,
                data={"account_id": account_id, "old_score": old_score, "new_score": result.score,
                      "old_band": old_band, "new_band": result.band, "coverage": result.coverage,
                      "model_version": version, "factors": _factors(result)}))
    await session.flush()


async def score_pending(ctx: ServiceContext, *, batch: int, refresh_seconds: float) -> int:
    """Score every account marked dirty (and those not scored for ``refresh_seconds``)."""
    done = 0
    while True:
        async with ctx.session_factory() as session, session.begin():
            now = utcnow()
            dirty = await repo.dirty_accounts(session, batch)
            stale = [] if dirty else await repo.stale_accounts(
                session, now - dt.timedelta(seconds=refresh_seconds), batch)
            await score_accounts(session, ctx.outbox, [a for a, _ in dirty] + stale, now)
            await repo.clear_dirty(session, dirty)
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
