"""No feature reads the future: adding every event after a cutoff (usage, surveys, tickets, deliveries,
touchpoints, renewals that move the renewal date and ARR, churn) leaves the features of every
snapshot dated before the cutoff exactly as they were."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from services.metrics.risk import repository as risk_repo
from services.metrics.risk.features import end_of, features_at
from shared.db import utcnow
from sim import simulate
from tests.metrics.test_risk import QUIET, feed


def _when(e: dict[str, Any]) -> dt.datetime:
    """When the fact an event carries happened (a delivery: when it was delivered)."""
    raw = e["data"].get("delivered_at") if e["type"] == "postsales.commitment.updated" else e["time"]
    return dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))


def _same(a: dict[str, float], b: dict[str, float]) -> bool:
    return a.keys() == b.keys() and all(
        (math.isnan(a[k]) and math.isnan(b[k])) or a[k] == b[k] for k in a)


async def _snapshot_features(svc: Any, ids: list[str], days: list[dt.date]) -> dict[tuple[str, dt.date], Any]:
    async with svc.ctx.session_factory() as s:
        hs = await risk_repo.histories(s, ids)
    return {(a, d): features_at(hs[a], end_of(d)) for a in ids for d in days}


async def test_events_after_the_cutoff_do_not_change_earlier_snapshots(service: Any) -> None:
    now = utcnow()
    book = simulate(accounts=25, months=12, seed=9, today=now.date(), users_per_account=4, driver_rate=0.5)
    live_since = dt.datetime.combine(book.start, dt.time(), tzinfo=dt.UTC)  # accounts known from the start
    ids = [a.id for a in book.accounts]
    # History arrives fortnight by fortnight; each snapshot is taken with only what had happened by then.
    cutoffs = [end_of(now.date() - dt.timedelta(days=7 * k)) for k in range(40, 10, -2)]
    later = [a for a in book.accounts if a.churned_on and a.churned_on > cutoffs[0].date()]
    assert later, "the book must churn accounts after the first cutoff"
    seen: dict[tuple[str, dt.date], Any] = {}
    async with service("metrics", **QUIET) as svc:
        previous = dt.datetime.min.replace(tzinfo=dt.UTC)
        for cutoff in cutoffs:
            await feed(svc, book, imported_at=live_since,
                       keep=lambda e, lo=previous, hi=cutoff: lo < _when(e) <= hi)
            seen.update(await _snapshot_features(svc, ids, [cutoff.date()]))
            previous = cutoff
        await feed(svc, book, imported_at=live_since, keep=lambda e: _when(e) > cutoffs[-1])
        after = await _snapshot_features(svc, ids, [c.date() for c in cutoffs])
        async with svc.ctx.session_factory() as s:
            hs = await risk_repo.histories(s, ids)
    # The later history really arrived: renewals and churn after the cutoffs, and today's features differ.
    assert any(f.kind == "renewal" and f.at > cutoffs[0] for h in hs.values() for f in h.facts)
    assert any(f.kind == "stage" and f.data.get("to") == "churned" and f.at > cutoffs[0]
               for h in hs.values() for f in h.facts)
    assert any(not _same(features_at(hs[a], now)[0], seen[(a, cutoffs[-1].date())][0]) for a in ids)
    changed = [(a, d) for (a, d), (f, health) in seen.items()
               if not _same(f, after[(a, d)][0]) or health != after[(a, d)][1]]
    assert changed == []
