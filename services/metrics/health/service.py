"""Health scoring: gather an account's inputs, score them with the current model, keep the
previous score for "what changed", and emit ``health.changed`` when the band moves or the score moved
by at least ``METRICS_HEALTH_MIN_DELTA`` since the last emitted one (only ever with a known band).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics.db import lock_scores
from services.metrics.facts import repository as facts_repo
from services.metrics.feedback import repository as feedback_repo
from services.metrics.health import repository as repo
from services.metrics.health.schemas import HealthModelIn
from services.metrics.health.scoring import (
    COMPONENTS,
    DEFAULT_BANDS,
    DEFAULT_THRESHOLDS,
    DEFAULT_WEIGHTS,
    Inputs,
    Scored,
    Thresholds,
    combine,
    components,
    descriptions,
)
from services.metrics.models import Account, Commitment, HealthModel, HealthScore, Survey, Ticket
from services.metrics.settings import Settings
from services.metrics.usage import repository as usage_repo
from shared.app import ServiceContext
from shared.db import utcnow
from shared.events.envelope import CloudEvent
from shared.events.outbox import Outbox

log = logging.getLogger("postsales.metrics.health")
SOURCE = "/services/metrics"


@dataclass(frozen=True)
class Policy:
    """How scores become bands and events (settings, not part of the model)."""

    min_coverage: float = 0.5
    min_delta: float = 5.0

    @classmethod
    def of(cls, settings: Any) -> Policy:
        if isinstance(settings, Settings):
            return cls(settings.health_min_coverage, settings.health_min_delta)
        return cls()


@dataclass(frozen=True)
class CurrentModel:
    version: int
    weights: dict[str, float]
    bands: dict[str, float]
    thresholds: Thresholds


def _latest(*times: dt.datetime | None) -> dt.datetime | None:
    present = [t for t in times if t is not None]
    return max(present) if present else None


async def gather(session: AsyncSession, account_ids: list[str], now: dt.datetime,
                 t: Thresholds = DEFAULT_THRESHOLDS) -> dict[str, Inputs]:
    """The inputs of each account anything is known about (set-based: a few queries for all of them)."""
    today = now.date()
    accounts = await facts_repo.accounts_by_id(session, account_ids)
    last_usage = await usage_repo.last_usage(session, account_ids)
    users = await usage_repo.active_users(session, account_ids, today - dt.timedelta(days=t.usage_window_days - 1),
                                          today)
    recent: dict[str, float] = defaultdict(float)
    prior: dict[str, float] = defaultdict(float)
    recent_from = today - dt.timedelta(days=t.trend_window_days - 1)
    for a, day, events in await usage_repo.recent_days(
            session, account_ids, today - dt.timedelta(days=2 * t.trend_window_days - 1)):
        if day <= today:  # a day ahead (within the allowed skew) is not "the last N days"
            (recent if day >= recent_from else prior)[a] += events
    surveys: dict[str, list[Survey]] = defaultdict(list)
    for sv in await feedback_repo.surveys_for(session, account_ids, now - dt.timedelta(days=t.survey_window_days)):
        surveys[sv.account_id].append(sv)
    tickets: dict[str, list[Ticket]] = defaultdict(list)
    for tk in await feedback_repo.tickets_for(session, account_ids, now - dt.timedelta(days=t.ticket_window_days)):
        tickets[tk.account_id].append(tk)
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
            account_since=_relationship_start(account) if account else None,
            has_usage=a in last_usage,
            active_users_30d=users.get(a, 0),
            events_recent_14d=recent[a],
            events_prior_14d=prior[a],
            nps_scores=[sv.score for sv in surveys[a] if sv.kind == "nps"],
            csat_scores=[sv.score for sv in surveys[a] if sv.kind == "csat"],
            tickets=[(tk.opened_at, tk.first_response_at, tk.resolved_at) for tk in tickets[a]],
            commitments=[(c.status, c.due_date, c.delivered_at) for c in commitments[a]],
            as_of=_latest(last_usage.get(a), account.updated_at if account else None,
                          *(sv.responded_at for sv in surveys[a][-1:]), *(tk.updated_at for tk in tickets[a]),
                          *(c.updated_at for c in commitments[a])),
        )
    return out


def _thresholds(stored: dict[str, Any] | None) -> Thresholds:
    return Thresholds.model_validate(stored) if stored else DEFAULT_THRESHOLDS


async def current_model(session: AsyncSession) -> CurrentModel:
    m = await repo.latest_model(session)
    if m is None:
        return CurrentModel(0, dict(DEFAULT_WEIGHTS), dict(DEFAULT_BANDS), DEFAULT_THRESHOLDS)
    return CurrentModel(m.version, {k: float(v) for k, v in m.weights.items()},
                        {k: float(v) for k, v in m.bands.items()}, _thresholds(m.thresholds))


async def evaluate(session: AsyncSession, account_ids: list[str], now: dt.datetime, policy: Policy = Policy()
                   ) -> tuple[dict[str, tuple[Scored, Inputs]], int]:
    """Score accounts with the current model (without storing); unknown accounts are left out."""
    model = await current_model(session)
    inputs = await gather(session, account_ids, now, model.thresholds)
    return {a: (combine(components(i, model.thresholds), model.weights, model.bands,
                        unknown_value=model.thresholds.unknown_value, min_coverage=policy.min_coverage), i)
            for a, i in inputs.items()}, model.version


def factors(before: list[dict[str, Any]] | None, after: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The components whose contribution changed since ``before`` (the last emitted score), largest change
    first: name, status, value, old and new contribution and the change."""
    old = {c["name"]: c for c in before or []}
    out = []
    for c in after:
        previous = old.get(c["name"])
        old_contribution = previous["contribution"] if previous is not None else None
        change = round(c["contribution"] - (old_contribution or 0.0), 2)
        if change or previous is None or previous.get("status") != c["status"]:
            out.append({"name": c["name"], "status": c["status"], "value": c["value"],
                        "old_contribution": old_contribution, "contribution": c["contribution"], "change": change})
    out.sort(key=lambda f: abs(f["change"]), reverse=True)
    return out


def should_emit(row: HealthScore, result: Scored, min_delta: float) -> bool:
    """A known band that differs from the last emitted one, or a score at least ``min_delta`` from it."""
    if result.band is None or result.score is None:
        return False  # downstream keeps the last known band: health.changed never carries a null band
    if row.emitted_band is None or row.emitted_score is None or result.band != row.emitted_band:
        return True
    return round(abs(result.score - row.emitted_score), 6) >= min_delta


async def score_accounts(session: AsyncSession, outbox: Outbox, account_ids: list[str],
                         now: dt.datetime | None = None, policy: Policy = Policy()) -> None:
    """Re-score accounts and store the scores; emits ``health.changed`` where ``should_emit`` says so."""
    now = now or utcnow()
    await lock_scores(session)
    scored, version = await evaluate(session, account_ids, now, policy)
    stored = await repo.scores_for(session, list(account_ids))
    for account_id in stored.keys() - scored.keys():
        # Scored once, nothing known about it any more (its signals aged out): the last score stands, but
        # it was checked under this model now, so the stale and outdated scans move on to other accounts.
        stored[account_id].computed_at, stored[account_id].model_version = now, version
    if not scored:
        await session.flush()
        return
    for account_id, (result, inputs) in scored.items():
        row = stored.get(account_id)
        if row is None:
            row = HealthScore(account_id=account_id)
            session.add(row)
        elif row.score != result.score:
            row.previous_score, row.previous_band = row.score, row.band
            row.previous_components, row.previous_computed_at = row.components, row.computed_at
        row.score, row.band, row.band_reason, row.coverage = result.score, result.band, result.band_reason, \
            result.coverage
        row.components, row.model_version = result.components, version
        row.computed_at, row.as_of = now, inputs.as_of
        if should_emit(row, result, policy.min_delta):
            await outbox.add(session, CloudEvent.new(
                type="postsales.health.changed", source=SOURCE, subject=account_id, time=now,
                data={"account_id": account_id, "old_score": row.emitted_score, "new_score": result.score,
                      "old_band": row.emitted_band, "new_band": result.band, "coverage": result.coverage,
                      "model_version": version, "factors": factors(row.emitted_components, result.components)}))
            row.emitted_score, row.emitted_band = result.score, result.band
            row.emitted_components, row.emitted_at = result.components, now
    await session.flush()


async def score_pending(ctx: ServiceContext, *, batch: int, refresh_seconds: float) -> int:
    """Score every account marked dirty (and those not scored for ``refresh_seconds``)."""
    policy = Policy.of(ctx.settings)
    done = 0
    while True:
        async with ctx.session_factory() as session, session.begin():
            now = utcnow()
            dirty = await repo.dirty_accounts(session, batch)
            # A model PUT marks every stored score dirty, but an account scored for the first time while the
            # PUT commits is not among them yet: scores on another version are picked up here.
            stale = [] if dirty else (
                await repo.outdated_accounts(session, await repo.max_model_version(session), batch)
                or await repo.stale_accounts(session, now - dt.timedelta(seconds=refresh_seconds), batch))
            await score_accounts(session, ctx.outbox, [a for a, _ in dirty] + stale, now, policy)
            await repo.clear_dirty(session, dirty)
            wrote_events = bool(session.info.get("outbox_dirty"))
        if wrote_events and ctx.relay is not None:
            ctx.relay.notify()
        done += len(dirty) + len(stale)
        if len(dirty) < batch and len(stale) < batch:
            return done


def _model_out(version: int, weights: dict[str, float], bands: dict[str, float], thresholds: Thresholds,
               created_at: dt.datetime | None, created_by: str | None) -> dict[str, Any]:
    about = descriptions(thresholds)
    return {"version": version, "weights": weights, "bands": bands, "thresholds": thresholds.model_dump(),
            "created_at": created_at, "created_by": created_by,
            "components": [{"name": n, "description": about[n]} for n in COMPONENTS]}


def _default_out() -> dict[str, Any]:
    return _model_out(0, dict(DEFAULT_WEIGHTS), dict(DEFAULT_BANDS), DEFAULT_THRESHOLDS, None, None)


def _stored_out(m: HealthModel) -> dict[str, Any]:
    return _model_out(m.version, m.weights, m.bands, _thresholds(m.thresholds), m.created_at, m.created_by)


async def get_model(session: AsyncSession) -> dict[str, Any]:
    m = await repo.latest_model(session)
    return _default_out() if m is None else _stored_out(m)


async def list_models(session: AsyncSession) -> list[dict[str, Any]]:
    return [*(_stored_out(m) for m in await repo.model_versions(session)), _default_out()]


async def put_model(session: AsyncSession, body: HealthModelIn, by: str) -> dict[str, Any]:
    version = await repo.max_model_version(session) + 1
    m = HealthModel(version=version, weights=body.weights.model_dump(), bands=body.bands.model_dump(),
                    thresholds=body.thresholds.model_dump(), created_at=utcnow(), created_by=by)
    session.add(m)
    await session.flush()
    # Every score now rests on an old model: queue them all for re-scoring.
    await repo.mark_dirty(session, await repo.all_scored_accounts(session))
    return _stored_out(m)


def _relationship_start(account: Account) -> dt.datetime | None:
    """When the relationship began, the engagement clock's start: the contract start when it is earlier than
    the record (an imported account is not a fresh contact), else when the account was first seen."""
    starts: list[dt.datetime] = [] if account.created_at is None else [account.created_at]
    if account.contract_start is not None:
        starts.append(dt.datetime.combine(account.contract_start, dt.time(), dt.UTC))
    return min(starts) if starts else None
