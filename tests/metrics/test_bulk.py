"""The driver-level bulk writes of the ingestion hot path agree with the ORM, on both databases."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from services.metrics.bulk import SQLITE_MAX_PARAMS, BulkInsert
from services.metrics.models import UsageDaily, UsageDailyUser
from shared.testing import RunningService

USERS = BulkInsert(UsageDailyUser.__table__, ["account_id", "day", "user_id"],  # type: ignore[arg-type]
                   conflict=["account_id", "day", "user_id"], returning=["user_id", "day"])
DAILY = BulkInsert(UsageDaily.__table__, ["account_id", "day", "events", "event_count", "active_users",  # type: ignore[arg-type]
                                          "last_at"],
                   conflict=["account_id", "day"],
                   update={"events": "{t}.events + {new}.events",
                           "last_at": "CASE WHEN {new}.last_at > {t}.last_at THEN {new}.last_at ELSE {t}.last_at END"})
FRESH = BulkInsert(UsageDaily.__table__, ["account_id", "day", "events", "event_count", "active_users",  # type: ignore[arg-type]
                                          "last_at"], returning=["account_id", "day", "last_at"])
PLUS3 = dt.timezone(dt.timedelta(hours=3))


def daily(i: int, at: dt.datetime) -> tuple[Any, ...]:
    return (f"a{i}", at.astimezone(dt.UTC).date(), 0.5 * i, i, i % 7, at)


async def test_rows_written_in_bulk_read_back_through_the_orm_as_written(service: Any) -> None:
    at = dt.datetime(2026, 11, 20, 2, 30, 15, 250_000, tzinfo=PLUS3)  # 23:30:15.25 UTC the day before
    day = dt.date(2026, 11, 19)
    # More rows than one SQLite statement may carry: the writer splits them.
    n = SQLITE_MAX_PARAMS // len(DAILY.columns) + 500
    rows = [daily(i, at + dt.timedelta(seconds=i)) for i in range(n)]
    async with service("metrics", run_consumers=False, run_relay=False) as svc:
        svc: RunningService
        async with svc.ctx.session_factory() as s, s.begin():
            returned = await FRESH.execute(s, rows)
            users = await USERS.execute(s, [("a0", day, f"u{i}") for i in range(n)])
            again = await USERS.execute(s, [("a0", day, "u1"), ("a0", day, "u2"), ("a0", day, "new")])
        assert len(returned) == n and {r[0] for r in returned} == {f"a{i}" for i in range(n)}
        first = next(r for r in returned if r[0] == "a0")
        assert first[1:] == (day, at)  # Python values, aware UTC, on both backends
        assert first[2].tzinfo is not None and first[2].utcoffset() == dt.timedelta(0)
        assert len(users) == n and [tuple(r) for r in again] == [("new", day)]  # conflicts return nothing

        async with svc.ctx.session_factory() as s:
            stored = {d.account_id: d for d in (await s.execute(select(UsageDaily))).scalars()}
            # SQL comparisons on the stored times agree with Python's (same format as ORM writes).
            later = (await s.execute(select(UsageDaily.account_id).where(
                UsageDaily.last_at > at + dt.timedelta(seconds=n - 3)))).scalars().all()
        assert len(stored) == n
        a5 = stored["a5"]
        assert (a5.day, a5.events, a5.event_count, a5.active_users) == (day, 2.5, 5, 5)
        assert a5.last_at == at + dt.timedelta(seconds=5)
        assert sorted(later) == sorted([f"a{n - 2}", f"a{n - 1}"])


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
