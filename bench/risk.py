"""``make bench`` section: churn-risk training and scoring time on a full-size simulated book.

The book (``sim.simulate``: 200 accounts over 18 months by default) is folded into a fresh metrics
database through the service's own consumer handlers, then timed: training (snapshots, backtest,
fit, and the scoring of every active account that follows) and a scoring pass alone, each also per
1,000 accounts.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from services.metrics.risk import service as risk
from shared.db import utcnow
from sim import simulate
from sim.inprocess import apply_book


async def risk_bench(ctx: Any, accounts: int, months: int) -> dict[str, Any]:
    now = utcnow()
    book = simulate(accounts=accounts, months=months, seed=7, today=now.date())
    started = time.perf_counter()
    await apply_book(ctx.session_factory, book, imported_at=now - dt.timedelta(hours=1))
    loaded = time.perf_counter() - started
    config = risk.RiskConfig(bands={"high": 0.5, "medium": 0.2})
    async with ctx.session_factory() as s, s.begin():
        started = time.perf_counter()
        model = await risk.train(s, ctx.outbox, horizon=90, cutoff=None, by="bench", config=config)
        trained = time.perf_counter() - started
    async with ctx.session_factory() as s, s.begin():
        started = time.perf_counter()
        scored = await risk.score_all(s, ctx.outbox, config=config)
        scoring = time.perf_counter() - started
    bt = model["backtest"]
    return {"accounts": accounts, "months": months, "load_s": loaded, "train_s": trained, "score_s": scoring,
            "scored": scored, "snapshots": bt["n_snapshots"], "auc": bt["auc"], "baseline_auc": bt["baseline"]["auc"],
            "summary": book.summary()}


def report(backend: str, r: dict[str, Any]) -> list[str]:
    per = 1000 / r["accounts"]
    return [
        f"\n[{backend}] churn risk on a simulated book: {r['accounts']} accounts, {r['months']} months "
        f"({r['summary']['usage_events']:,} usage events, {r['summary']['churned']} churned), "
        f"loaded through the handlers in {r['load_s']:.1f}s",
        f"  training ({r['snapshots']:,} snapshots, backtest, fit, scoring)  {r['train_s']:8.2f} s"
        f"   = {r['train_s'] * per:8.2f} s per 1,000 accounts",
        f"  scoring every active account ({r['scored']})                 {r['score_s']:8.2f} s"
        f"   = {r['score_s'] * 1000 / max(1, r['scored']):8.2f} s per 1,000 accounts",
        f"  backtest AUC {r['auc']} (health score alone {r['baseline_auc']})",
    ]
