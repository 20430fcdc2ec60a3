"""The driver-level bulk writes of the ingestion hot path agree with the ORM, on both databases."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from services.metrics.bulk import SQLITE_MAX_PARAMS, BulkInsert
from services.metrics.models import UsageDaily, UsageEvent
from shared.testing import RunningService

RAW = BulkInsert(UsageEvent.__table__, ["source", "event_id", "account_id", "type", "user_id", "feature",  # type: ignore[arg-type]
                                        "quantity", "occurred_at", "day", "received_at"],
                 conflict=["source", "event_id"], returning=["event_id", "day", "occurred_at"])
DAILY = BulkInsert(UsageDaily.__table__, ["account_id", "day", "events", "event_count", "active_users",  # type: ignore[arg-type]
                                          "last_at"],
                   conflict=["account_id", "day"],
                   update={"events": "{t}.events + {new}.events",
                           "last_at": "CASE WHEN {new}.last_at > {t}.last_at THEN {new}.last_at ELSE {t}.last_at END"})
PLUS3 = dt.timezone(dt.timedelta(hours=3))


def raw(i: int, at: dt.datetime) -> tuple[Any, ...]:
    return ("/src", f"e{i}", "acme", "usage.login", f"u{i % 7}", None if i % 2 else "export", 0.5 * i,
            at, at.astimezone(dt.UTC).date(), dt.datetime(2026, 11, 23, 12, 0, 0, 1, tzinfo=dt.UTC))


async def test_rows_written_in_bulk_read_back_through_the_orm_as_written(service: Any) -> None:
    at = dt.datetime(2026, 11, 20, 2, 30, 15, 250_000, tzinfo=PLUS3)  # 23:30:15.25 UTC the day before
    # More rows than one SQLite statement may carry: the writer splits them.
    n = SQLITE_MAX_PARAMS // len(RAW.columns) + 500
    rows = [raw(i, at + dt.timedelta(seconds=i)) for i in range(n)]
    async with service("metrics", run_consumers=False, run_relay=False) as svc:
        svc: RunningService
        async with svc.ctx.session_factory() as s, s.begin():
            returned = await RAW.execute(s, rows)
            again = await RAW.execute(s, [*rows[:10], raw(n, at)])  # conflicts return nothing
        assert len(returned) == n and {r[0] for r in returned} == {f"e{i}" for i in range(n)}
        first = next(r for r in returned if r[0] == "e0")
        assert first[1:] == (dt.date(2026, 11, 19), at)  # Python values, aware UTC, on both backends
        assert first[2].tzinfo is not None and first[2].utcoffset() == dt.timedelta(0)
        assert [r[0] for r in again] == [f"e{n}"]

        async with svc.ctx.session_factory() as s:
            stored = {e.event_id: e for e in (await s.execute(select(UsageEvent))).scalars()}
            # SQL comparisons on the stored times agree with Python's (same format as ORM writes).
            later = (await s.execute(select(UsageEvent.event_id).where(
                UsageEvent.occurred_at > at + dt.timedelta(seconds=n - 3)))).scalars().all()
        assert len(stored) == n + 1
        e5 = stored["e5"]
        assert (e5.account_id, e5.user_id, e5.feature, e5.quantity) == ("acme", "u5", None, 2.5)
        assert e5.occurred_at == at + dt.timedelta(seconds=5) and e5.day == dt.date(2026, 11, 19)
        assert e5.received_at == dt.datetime(2026, 11, 23, 12, 0, 0, 1, tzinfo=dt.UTC)
        assert sorted(later) == sorted([f"e{n - 2}", f"e{n - 1}"])


async def test_upsert_adds_to_existing_rows_and_keeps_the_latest_time(service: Any) -> None:
    day = dt.date(2026, 11, 20)
    t1 = dt.datetime(2026, 11, 20, 10, tzinfo=dt.UTC)
    async with service("metrics", run_consumers=False, run_relay=False) as svc:
        async with svc.ctx.session_factory() as s, s.begin():
            s.add(UsageDaily(account_id="acme", day=day, events=2.0, event_count=2, active_users=1, last_at=t1))
        async with svc.ctx.session_factory() as s, s.begin():
            await DAILY.execute(s, [("acme", day, 3.0, 1, 0, t1 - dt.timedelta(hours=1)),
                                    ("beta", day, 1.0, 1, 1, t1)])
        async with svc.ctx.session_factory() as s, s.begin():
            await DAILY.execute(s, [("acme", day, 1.5, 1, 0, t1 + dt.timedelta(microseconds=1))])
        async with svc.ctx.session_factory() as s:
            got = {d.account_id: (d.events, d.event_count, d.last_at)
                   for d in (await s.execute(select(UsageDaily))).scalars()}
    # event_count is not in the update map: an upsert leaves it as it was.
    assert got == {"acme": (6.5, 2, t1 + dt.timedelta(microseconds=1)), "beta": (1.0, 1, t1)}
