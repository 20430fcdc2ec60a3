"""Churn risk: point-in-time snapshots and labels, training with a time-split backtest against the
health score, scoring every active account, and ``risk.changed`` when an account's band moves.

Snapshots are dated every ``snapshot_days`` back from today, per account from its start until it
churned. A snapshot dated ``d`` sees facts up to the end of ``d``; its label is whether the account
churned within ``horizon_days`` after it, so only snapshots dated on or before ``today - horizon`` are
labelled; at least ``min_churned`` (10) churned accounts must be among them. The backtest trains on
snapshots dated on or before ``cutoff - horizon`` (their outcome was known at the cutoff) and tests on
those dated from ``cutoff`` to ``today - horizon``; the model kept is then refit on every labelled
snapshot. Snapshots start four weeks after an account's first usage (the windows need a month).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics.models import RiskModel, RiskScore
from services.metrics.risk import repository as repo
from services.metrics.risk.features import (
    BASE_FEATURES,
    History,
    attribute,
    churned_at,
    end_of,
    features_at,
    next_renewal,
    started_on,
    vector,
)
from services.metrics.risk.model import Fitted, band, evaluate, fit
from shared.db import utcnow
from shared.errors import Unprocessable
from shared.events.envelope import CloudEvent
from shared.events.outbox import Outbox

log = logging.getLogger("postsales.metrics.risk")
SOURCE = "/services/metrics"
CHUNK = 250  # accounts loaded per query round
MIN_CHURNED = 10
EVENT_DRIVERS = 5
WARMUP_DAYS = 28
NO_MODEL = "no churn-risk model has been trained yet (POST /v1/risk-model/train)"


@dataclass
class Snapshot:
    account_id: str
    day: dt.date
    features: dict[str, float]
    health: float | None
    label: int


@dataclass
class RiskConfig:
    bands: dict[str, float]
    snapshot_days: int = 7
    min_churned: int = MIN_CHURNED


def _snapshot_days(h: History, today: dt.date, last: dt.date, every: int) -> list[dt.date]:
    start = started_on(h)
    if start is None:
        return []
    start += dt.timedelta(days=WARMUP_DAYS)  # the 30-day windows need a month of observation
    out = []
    d = today - dt.timedelta(days=every * math.ceil((today - last).days / every))
    while d >= start:
        out.append(d)
        d -= dt.timedelta(days=every)
    return out


def snapshots_of(h: History, *, today: dt.date, horizon: int, every: int) -> list[Snapshot]:
    """The labelled snapshots of one account (dated on or before ``today - horizon``)."""
    churn = churned_at(h)
    out = []
    for day in _snapshot_days(h, today, today - dt.timedelta(days=horizon), every):
        t = end_of(day)
        if churn is not None and churn <= t:
            continue  # churned already: nothing left to predict
        label = int(churn is not None and churn <= t + dt.timedelta(days=horizon))
        features, health = features_at(h, t)
        out.append(Snapshot(h.account_id, day, features, health, label))
    return out


async def dataset(session: AsyncSession, *, today: dt.date, horizon: int, every: int) -> list[Snapshot]:
    ids = await repo.known_accounts(session)
    out: list[Snapshot] = []
    for i in range(0, len(ids), CHUNK):
        for h in (await repo.histories(session, ids[i:i + CHUNK])).values():
            out += snapshots_of(h, today=today, horizon=horizon, every=every)
    return out


def feature_names(snaps: list[Snapshot]) -> list[str]:
    segments = sorted({n for s in snaps for n in s.features if n.startswith("segment_")})
    return [*BASE_FEATURES, *segments]


def _matrix(snaps: list[Snapshot], names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    x = np.array([vector(s.features, names) for s in snaps], dtype=float).reshape(len(snaps), len(names))
    return x, np.array([s.label for s in snaps], dtype=int)


def _baseline(snaps: list[Snapshot]) -> np.ndarray:
    """The health score as a risk: (100 - score) / 100; an account without a score counts as 0.5."""
    return np.array([0.5 if s.health is None else (100 - s.health) / 100 for s in snaps], dtype=float)


def default_cutoff(days: list[dt.date]) -> dt.date:
    """The date that leaves about a third of the labelled snapshots for the test."""
    ordered = sorted(days)
    return ordered[min(len(ordered) - 1, (2 * len(ordered)) // 3)]


def _churned_accounts(snaps: list[Snapshot]) -> int:
    return len({s.account_id for s in snaps if s.label})


def backtest_and_fit(snaps: list[Snapshot], *, today: dt.date, horizon: int, cutoff: dt.date | None,
                     min_churned: int = MIN_CHURNED) -> tuple[Fitted, dict[str, Any]]:
    """Backtest a model trained before ``cutoff`` on the snapshots after it, then fit on everything."""
    total = _churned_accounts(snaps)
    if total < min_churned:
        raise Unprocessable(f"only {total} churned account(s) in the labelled history; at least {min_churned} are "
                            "needed to learn from. Import more history (renewals and churned stages with `at`) or "
                            "wait for more outcomes.", churned_accounts=total, needed=min_churned)
    if cutoff is None:
        cutoff = default_cutoff([s.day for s in snaps])
    if cutoff > today - dt.timedelta(days=horizon) or cutoff < min(s.day for s in snaps) + dt.timedelta(days=horizon):
        raise Unprocessable(f"cutoff {cutoff} leaves no training or no test snapshots: it must be between "
                            f"{min(s.day for s in snaps) + dt.timedelta(days=horizon)} and "
                            f"{today - dt.timedelta(days=horizon)}",
                            errors=[{"loc": ["body", "cutoff"], "msg": "out of range"}])
    train = [s for s in snaps if s.day <= cutoff - dt.timedelta(days=horizon)]
    test = [s for s in snaps if cutoff <= s.day <= today - dt.timedelta(days=horizon)]
    learnable = _churned_accounts(train)
    if learnable == 0 or _churned_accounts(test) == 0:
        side = "before" if learnable == 0 else "after"
        raise Unprocessable(f"no churned account {side} the cutoff {cutoff}: the backtest needs churn on both sides. "
                            "Choose another cutoff or import more history.",
                            errors=[{"loc": ["body", "cutoff"], "msg": f"no churn {side} it"}])
    names = feature_names(snaps)
    x_train, y_train = _matrix(train, names)
    model = fit(x_train, y_train, names)
    x_test, y_test = _matrix(test, names)
    scores = model.predict(x_test) if len(test) else np.array([])
    report = {"cutoff": cutoff.isoformat(), "n_train": len(train), "n_test": len(test),
              "positives_train": int(y_train.sum()), "positives_test": int(y_test.sum()),
              "churned_accounts_train": learnable, **evaluate(y_test, scores),
              "baseline": {"name": "health score", **evaluate(y_test, _baseline(test))}}
    x_all, y_all = _matrix(snaps, names)
    return fit(x_all, y_all, names), report


def drivers(model: Fitted, features: dict[str, float]) -> list[dict[str, Any]]:
    """Every feature's value and contribution to the log-odds of churn, the largest push to risk first."""
    x = np.array([vector(features, model.features)], dtype=float)
    contrib = model.contributions(x)[0]
    out: list[dict[str, Any]] = []
    for name, value, c in zip(model.features, x[0], contrib, strict=True):
        if name.startswith("segment_") and value == 0:
            continue  # another segment's one-hot says nothing about this account
        out.append({"name": name, "value": None if math.isnan(value) else round(float(value), 4),
                    "contribution": round(float(c), 4)})
    out.sort(key=lambda d: d["contribution"], reverse=True)
    return out


def model_out(m: RiskModel) -> dict[str, Any]:
    p = m.params
    return {"version": m.version, "trained_at": m.trained_at, "trained_by": m.trained_by,
            "horizon_days": m.horizon_days, "features": m.features, "backtest": m.backtest,
            "coefficients": {n: round(c, 6) for n, c in zip(m.features, p["coef"], strict=True)},
            "intercept": p["intercept"]}


async def train(session: AsyncSession, outbox: Outbox, *, horizon: int, cutoff: dt.date | None, by: str | None,
                config: RiskConfig, now: dt.datetime | None = None) -> dict[str, Any]:
    """Build the snapshots, backtest, store a new model version and score every active account with it."""
    now = now or utcnow()
    today = now.date()
    if cutoff is not None and cutoff > today:
        raise Unprocessable("cutoff must not be in the future", errors=[{"loc": ["body", "cutoff"],
                                                                           "msg": "in the future"}])
    snaps = await dataset(session, today=today, horizon=horizon, every=config.snapshot_days)
    if not snaps:
        raise Unprocessable(f"no labelled history: an account needs facts older than {horizon} days; at least "
                            f"{config.min_churned} churned accounts are needed to learn from",
                            churned_accounts=0, needed=config.min_churned)
    fitted, report = backtest_and_fit(snaps, today=today, horizon=horizon, cutoff=cutoff,
                                      min_churned=config.min_churned)
    report["n_snapshots"] = len(snaps)
    report["snapshot_days"] = config.snapshot_days
    m = RiskModel(version=await repo.next_model_version(session), trained_at=now, trained_by=by,
                  horizon_days=horizon, features=fitted.features, params=fitted.params(), backtest=report)
    session.add(m)
    await session.flush()
    await score_all(session, outbox, model=m, config=config, now=now)
    return model_out(m)


def fitted_of(m: RiskModel) -> Fitted:
    return Fitted.from_params(list(m.features), m.params)


@dataclass
class Scored:
    probability: float
    band: str
    drivers: list[dict[str, Any]]
    arr: str | None
    owner: str | None
    segment: str | None
    renewal_date: dt.date | None


def score_history(h: History, model: Fitted, bands: dict[str, float], now: dt.datetime) -> Scored | None:
    """The account's risk now (None once it has churned)."""
    churn = churned_at(h)
    if (churn is not None and churn <= now) or h.current.get("stage") == "churned":
        return None
    features, _ = features_at(h, now)
    p = float(model.predict(np.array([vector(features, model.features)], dtype=float))[0])
    arr = attribute(h, "arr", now)
    return Scored(probability=round(p, 4), band=band(p, bands), drivers=drivers(model, features),
                  arr=None if arr is None else str(arr), owner=attribute(h, "owner", now),
                  segment=attribute(h, "segment", now), renewal_date=next_renewal(h, now))


def _arr(value: str | None) -> float:
    try:
        x = float(value) if value is not None else 0.0
    except ValueError:
        return 0.0
    return x if math.isfinite(x) else 0.0


async def score_all(session: AsyncSession, outbox: Outbox, *, model: RiskModel | None = None, config: RiskConfig,
                    now: dt.datetime | None = None) -> int:
    """Score every active account with the current model; ``risk.changed`` for each band that moved.

    The event's time is the scoring time. An account's first score also emits it (with ``old_band``
    null and ``initial: true``) so lifecycle gets its copy; alert rules and playbooks that should act
    only on a change match ``data.old_band: {exists: true}`` (an import's first scoring pages no one).
    """
    now = now or utcnow()
    model = model or await repo.latest_model(session)
    if model is None:
        return 0
    fitted = fitted_of(model)
    since = now.date() - dt.timedelta(days=366)
    ids = await repo.known_accounts(session)
    done = 0
    for i in range(0, len(ids), CHUNK):
        chunk = ids[i:i + CHUNK]
        hs = await repo.histories(session, chunk, since=since)
        stored = await repo.scores_for(session, chunk)
        for account_id, h in hs.items():
            result = score_history(h, fitted, config.bands, now)
            row = stored.get(account_id)
            if result is None:
                if row is not None:
                    await session.delete(row)
                continue
            done += 1
            old_band, old_p = (row.band, row.probability) if row else (None, None)
            if row is None:
                row = RiskScore(account_id=account_id)
                session.add(row)
            else:
                row.previous_band, row.previous_probability = row.band, row.probability
            row.probability, row.band, row.drivers = result.probability, result.band, result.drivers
            row.model_version, row.horizon_days, row.as_of = model.version, model.horizon_days, now
            row.arr, row.arr_at_risk = result.arr, round(result.probability * _arr(result.arr), 2)
            row.owner, row.segment, row.renewal_date = result.owner, result.segment, result.renewal_date
            if result.band != old_band:
                await outbox.add(session, CloudEvent.new(
                    type="postsales.risk.changed", source=SOURCE, subject=account_id, time=now,
                    data={"account_id": account_id, "old_band": old_band, "new_band": result.band,
                          "old_probability": old_p, "new_probability": result.probability,
                          "drivers": [d for d in result.drivers if d["contribution"] > 0][:EVENT_DRIVERS],
                          "model_version": model.version, "horizon_days": model.horizon_days,
                          "initial": old_band is None}))
        await session.flush()
    return done


async def risk_of(session: AsyncSession, account_id: str, config: RiskConfig) -> dict[str, Any] | None:
    """The account's risk (its stored score, else evaluated now); None for an unknown account."""
    row = await repo.get_score(session, account_id)
    model = await repo.latest_model(session)
    if row is not None and model is not None:
        return {"account_id": account_id, "probability": row.probability, "band": row.band,
                "horizon_days": row.horizon_days, "drivers": row.drivers, "model_version": row.model_version,
                "as_of": row.as_of, "reason": None}
    if not await repo.is_known(session, account_id):
        return None
    empty = {"account_id": account_id, "probability": None, "band": None, "drivers": None, "model_version": None,
             "horizon_days": None, "as_of": None}
    if model is None:
        return {**empty, "reason": NO_MODEL}
    now = utcnow()
    h = (await repo.histories(session, [account_id], since=now.date() - dt.timedelta(days=366)))[account_id]
    result = score_history(h, fitted_of(model), config.bands, now)
    if result is None:
        return {**empty, "model_version": model.version, "horizon_days": model.horizon_days,
                "reason": "the account has churned: there is no risk left to predict"}
    return {"account_id": account_id, "probability": result.probability, "band": result.band,
            "horizon_days": model.horizon_days, "drivers": result.drivers, "model_version": model.version,
            "as_of": now, "reason": None}


def top_driver(row: RiskScore) -> str | None:
    positive = [d for d in row.drivers if d.get("contribution", 0) > 0]
    return positive[0]["name"] if positive else None
