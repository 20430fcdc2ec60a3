"""Churn risk on simulated history with planted drivers: the backtest beats the health score, the
drivers of churned accounts are the planted ones, the worklist orders by ARR at risk, and the
model's absence, too little churn and band changes are answered as documented."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from sqlalchemy import select

from services.metrics.facts.service import apply_fact
from services.metrics.models import RiskModel
from services.metrics.risk import repository as risk_repo
from services.metrics.risk import service as risk_service
from services.metrics.risk.features import end_of, features_at
from services.metrics.risk.scheduler import risk_pass
from shared.db import utcnow
from shared.events.envelope import CloudEvent
from shared.events.registry import METRICS_TOPIC
from shared.testing import KafkaProbe, RunningService, eventually
from sim import Book, simulate
from sim.inprocess import apply_book

# The measures of each planted driver (the simulator's drivers show in these features).
FAMILIES = {
    "declining_usage": {"usage_trend_30d", "usage_trend_90d", "usage_events_30d", "active_users_30d", "utilization",
                        "health_usage", "days_since_touchpoint", "health_engagement"},
    "detractor": {"nps_last", "csat_last", "health_sentiment"},
    "overdue_promises": {"overdue_commitments", "health_commitments"},
    "slow_support": {"slow_tickets_90d", "open_tickets", "health_support", "csat_last"},
}
PLANTED = set().union(*FAMILIES.values())
QUIET = {"health_interval": 3600, "risk_check_interval": 3600}  # no background passes during a test


async def feed(svc: RunningService, book: Book, *, imported_at: dt.datetime,
               keep: Callable[[dict[str, Any]], bool] = lambda _e: True) -> None:
    """Apply the book's events through metrics' own consumer handlers, as the consumers would."""
    await apply_book(svc.ctx.session_factory, book, imported_at=imported_at, keep=keep)


def family_of(name: str) -> set[str]:
    return {f for f, names in FAMILIES.items() if name in names}


async def test_backtest_beats_the_health_score_and_drivers_are_the_planted_ones(
        service: Any, kafka: KafkaProbe) -> None:
    now = utcnow()
    book = simulate(accounts=140, months=18, seed=6, today=now.date(), users_per_account=4, driver_rate=0.25)
    assert len(book.churned) >= 30
    async with service("metrics", **QUIET) as svc:
        await feed(svc, book, imported_at=now - dt.timedelta(hours=1))
        r = await svc.client.post("/v1/risk-model/train", json={"horizon_days": 90})
        assert r.status_code == 201, r.text
        m = r.json()
        bt = m["backtest"]
        assert m["version"] == 1 and "usage_trend_30d" in m["features"] and "overdue_commitments" in m["features"]
        # About a third of the labelled snapshots are for the test; both sides hold churn.
        share = bt["n_test"] / bt["n_snapshots"]
        assert 0.2 < share < 0.45, bt
        assert bt["positives_test"] > 0 and bt["positives_train"] > 0
        cutoff = dt.date.fromisoformat(bt["cutoff"])
        assert cutoff <= now.date() - dt.timedelta(days=90)
        # The model beats the health score alone, clearly.
        assert bt["auc"] >= 0.7, bt
        assert bt["auc"] >= bt["baseline"]["auc"] + 0.05, bt
        assert 0 <= bt["brier"] < 0.25 and bt["precision_at_top_decile"] > bt["positives_test"] / bt["n_test"]

        # The model is stored as plain JSON numbers, one per feature, and listed as a version.
        async with svc.ctx.session_factory() as s:
            stored = (await s.execute(select(RiskModel))).scalar_one()
            assert len(stored.params["coef"]) == len(stored.features) == len(stored.params["scale"])
            model = risk_service.fitted_of(stored)
            hs = await risk_repo.histories(s, [a.id for a in book.churned])
        versions = (await svc.client.get("/v1/risk-model/versions")).json()["items"]
        assert [v["version"] for v in versions] == [1]
        current = (await svc.client.get("/v1/risk-model")).json()
        assert current["version"] == 1 and current["feature_descriptions"]["nps_last"]

        # The drivers of each churned account shortly before it churned are its planted drivers.
        hits = 0
        top_families: Counter[str] = Counter()
        explained = [a for a in book.churned if a.drivers]
        for a in explained:
            assert a.churned_on is not None
            features, _ = features_at(hs[a.id], end_of(a.churned_on - dt.timedelta(days=10)))
            ds = risk_service.drivers(model, features)
            assert [d["contribution"] for d in ds] == sorted((d["contribution"] for d in ds), reverse=True)
            top3 = [d["name"] for d in ds[:3]]
            if any(family_of(n) & set(a.drivers) for n in top3):
                hits += 1
            for fam in family_of(ds[0]["name"]):
                top_families[fam] += 1
        assert hits >= 0.7 * len(explained), (hits, len(explained))
        assert sum(top_families.values()) >= 0.66 * len(explained), top_families  # the rest: renewal timing

        # Every active account is scored; the worklist runs by ARR at risk, with filters and a cursor.
        r = await svc.client.get("/v1/risk", params={"limit": 500})
        items = r.json()["items"]
        active = {a.id for a in book.accounts if a.churned_on is None}
        assert {i["account_id"] for i in items} == active
        at_risk = [i["arr_at_risk"] for i in items]
        assert at_risk == sorted(at_risk, reverse=True)
        for i in items[:5]:
            assert math.isclose(i["arr_at_risk"], i["probability"] * float(i["arr"]), rel_tol=1e-3, abs_tol=0.01)
            assert i["top_driver"] is None or i["top_driver"] in m["features"]
        pages: list[str] = []
        cursor = None
        while True:
            r = await svc.client.get("/v1/risk", params={"limit": 7, **({"cursor": cursor} if cursor else {})})
            body = r.json()
            pages += [i["account_id"] for i in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert pages == [i["account_id"] for i in items]
        seg = items[0]["segment"]
        filtered = (await svc.client.get("/v1/risk", params={"segment": seg, "limit": 500})).json()["items"]
        assert filtered and all(i["segment"] == seg for i in filtered)
        assert len(filtered) == sum(1 for i in items if i["segment"] == seg)
        band = items[0]["band"]
        by_band = (await svc.client.get("/v1/risk", params={"band": band, "limit": 500})).json()["items"]
        assert by_band and all(i["band"] == band for i in by_band)
        owner = items[0]["owner"]
        mine = (await svc.client.get("/v1/risk", params={"owner": owner, "limit": 500})).json()["items"]
        assert mine and all(i["owner"] == owner for i in mine)

        # One account's risk: its drivers, largest push first, named as the model's features.
        top = items[0]["account_id"]
        r = await svc.client.get(f"/v1/accounts/{top}/risk")
        risk = r.json()
        assert r.status_code == 200 and risk["probability"] == items[0]["probability"]
        assert risk["band"] == items[0]["band"] and risk["model_version"] == 1 and risk["horizon_days"] == 90
        contribs = [d["contribution"] for d in risk["drivers"]]
        assert contribs == sorted(contribs, reverse=True)
        assert {d["name"] for d in risk["drivers"]} <= set(m["features"])
        # An account that churns leaves the worklist at once, without waiting for the next scoring.
        leaving = items[-1]["account_id"]
        async with svc.ctx.session_factory() as s, s.begin():
            await apply_fact(s, CloudEvent.parse_document({
                "specversion": "1.0", "id": f"churn-{leaving}", "source": "/services/lifecycle",
                "type": "postsales.account.stage_changed", "subject": leaving, "time": utcnow().isoformat(),
                "data": {"account_id": leaving, "from": "adoption", "to": "churned"}}))
        still = {i["account_id"] for i in (await svc.client.get("/v1/risk", params={"limit": 500})).json()["items"]}
        assert still == active - {leaving}
        first_scored = set(active)
        active -= {leaving}
        items = [i for i in items if i["account_id"] != leaving]
        churned_one = book.churned[0].id
        gone = (await svc.client.get(f"/v1/accounts/{churned_one}/risk")).json()
        assert gone["probability"] is None and "churned" in gone["reason"]

        # First scoring: one risk.changed per active account, flagged initial (old band null).
        async def initial() -> list[Any] | None:
            got = [e for e in await kafka.events(METRICS_TOPIC, settle=0.3) if e.type == "postsales.risk.changed"]
            return got if len(got) >= len(first_scored) else None

        first = await eventually(initial, timeout=60, interval=0.5, message="initial risk.changed events")
        assert len(first) == len(first_scored) and {e.subject for e in first} == first_scored
        assert all(e.data["initial"] is True and e.data["old_band"] is None for e in first)
        assert all(e.data["drivers"] and all(d["contribution"] > 0 for d in e.data["drivers"]) for e in first)

        # Scoring again changes no band: nothing new. Tighter bands move some: those emit, not initial.
        r = await svc.client.post("/v1/risk-model/score")
        assert r.json() == {"scored": len(active), "model_version": 1, "reason": None}
        async with svc.ctx.session_factory() as s, s.begin():
            cfg = risk_service.RiskConfig(bands={"high": 0.02, "medium": 0.01})
            await risk_service.score_all(s, svc.ctx.outbox, config=cfg)
        svc.ctx.relay.notify()
        moved = {i["account_id"] for i in items if i["band"] != ("high" if i["probability"] >= 0.02 else "medium"
                                                                   if i["probability"] >= 0.01 else "low")}
        assert moved

        async def changes() -> list[Any] | None:
            got = [e for e in await kafka.events(METRICS_TOPIC, settle=0.3) if e.type == "postsales.risk.changed"
                   and not e.data["initial"]]
            return got if len(got) >= len(moved) else None

        later = await eventually(changes, timeout=60, interval=0.5, message="band changes")
        assert {e.subject for e in later} == moved
        assert all(e.data["old_band"] is not None and e.data["old_band"] != e.data["new_band"] for e in later)
        assert len([e for e in await kafka.events(METRICS_TOPIC, settle=0.3)
                    if e.type == "postsales.risk.changed"]) == len(first_scored) + len(moved)

        # The schedule: nothing to do within a day of the last scoring, a rescoring after a day, a
        # retraining (same horizon, a new version) once the model is older than the retrain interval.
        assert await risk_pass(svc.ctx, now=utcnow() + dt.timedelta(hours=1)) is None
        assert await risk_pass(svc.ctx, now=utcnow() + dt.timedelta(days=1, minutes=1)) == "scored"
        assert await risk_pass(svc.ctx, now=utcnow() + dt.timedelta(days=8)) == "retrained"
        versions = (await svc.client.get("/v1/risk-model/versions")).json()["items"]
        assert [v["version"] for v in versions] == [2, 1] and versions[0]["trained_by"] == "schedule"


async def test_before_any_model_nulls_with_a_reason_and_404_only_for_unknown_accounts(service: Any) -> None:
    now = utcnow()
    book = simulate(accounts=3, months=3, seed=1, today=now.date(), users_per_account=3)
    async with service("metrics", **QUIET) as svc:
        await feed(svc, book, imported_at=now - dt.timedelta(hours=1))
        r = await svc.client.get(f"/v1/accounts/{book.accounts[0].id}/risk")
        assert r.status_code == 200
        body = r.json()
        assert body["probability"] is None and body["band"] is None and body["drivers"] is None
        assert "no churn-risk model" in body["reason"]
        r = await svc.client.get("/v1/accounts/never-heard-of/risk")
        assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
        r = await svc.client.get("/v1/risk")
        assert r.status_code == 200 and r.json()["items"] == [] and r.json()["next_cursor"] is None
        assert r.json()["reason"]
        assert (await svc.client.get("/v1/risk-model")).json()["version"] is None
        assert (await svc.client.get("/v1/risk-model/versions")).json() == {"items": []}
        assert (await svc.client.post("/v1/risk-model/score")).json()["scored"] == 0
        assert await risk_pass(svc.ctx) is None  # the first model is an admin's decision


async def test_too_few_churned_accounts_is_a_422_that_says_so(service: Any) -> None:
    now = utcnow()
    book = simulate(accounts=25, months=14, seed=4, today=now.date(), users_per_account=3, driver_rate=0.1)
    churned = len(book.churned)
    assert churned < 10
    async with service("metrics", **QUIET) as svc:
        await feed(svc, book, imported_at=now - dt.timedelta(hours=1))
        r = await svc.client.post("/v1/risk-model/train", json={})
        assert r.status_code == 422, r.text
        problem = r.json()
        assert "churned" in problem["detail"] and "at least 10" in problem["detail"]
        assert problem["needed"] == 10 and problem["churned_accounts"] <= churned
        assert (await svc.client.get("/v1/risk-model/versions")).json() == {"items": []}
        # Only an admin trains.
        reader = svc.client_for(None)
        assert (await reader.post("/v1/risk-model/train", json={})).status_code == 401
        r = await svc.client.post("/v1/risk-model/train", json={"horizon_days": 3})
        assert r.status_code == 422


def _flat(xs: Iterable[float]) -> list[float | None]:
    return [None if isinstance(x, float) and math.isnan(x) else x for x in xs]


def test_contributions_explain_the_probability() -> None:
    """The drivers add up: intercept + sum of contributions is the log-odds of the probability."""
    from services.metrics.risk.model import fit
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    y = (x[:, 0] - x[:, 1] + rng.normal(scale=0.5, size=400) > 1).astype(int)
    x[::7, 2] = np.nan
    m = fit(x, y, ["a", "b", "c"])
    p = m.predict(x[:5])
    logit = m.intercept + m.contributions(x[:5]).sum(axis=1)
    assert np.allclose(p, 1 / (1 + np.exp(-logit)))
    assert m.coef[0] > 0 > m.coef[1]
    assert _flat(m.fill) == _flat(m.fill)
