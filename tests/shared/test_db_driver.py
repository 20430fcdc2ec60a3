"""SQLite through aiosqlite in one trip per statement (shared/db_driver.py), on a real database file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError

from shared.db import create_engine, create_sessionmaker

metadata = MetaData()
items = Table("items", metadata, Column("id", Integer, primary_key=True), Column("name", String, unique=True),
              Column("n", Integer, nullable=False, default=0))


@pytest.fixture
async def sessions(tmp_path: Path) -> Any:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield create_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The calls made on aiosqlite's connection thread, by function name."""
    made: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        made.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return made


async def test_each_statement_is_one_call_on_the_connection_thread(sessions: Any, trips: list[str]) -> None:
    async with sessions() as session, session.begin():
        await session.execute(insert(items).values(name="a"))
        await session.execute(select(items))
    # BEGIN IMMEDIATE, the insert, the select, COMMIT. SQLAlchemy's own adapter makes eleven here: it
    # opens, uses and closes an aiosqlite cursor for each statement, and fetches in a call of its own.
    assert trips == ["_run", "_run", "_run", "commit"]


async def test_results_rowcounts_and_returning_are_the_drivers(sessions: Any) -> None:
    async with sessions() as session, session.begin():
        first = await session.execute(insert(items).values(name="a", n=1))
        assert first.inserted_primary_key == (1,)  # lastrowid
        await session.execute(insert(items), [{"name": "b", "n": 2}, {"name": "c", "n": 3}])  # executemany
        returned = await session.execute(insert(items).values(name="d", n=4).returning(items.c.id, items.c.name))
        assert returned.all() == [(4, "d")]
        changed = await session.execute(update(items).where(items.c.n >= 2).values(n=items.c.n + 10))
        assert changed.rowcount == 3
        rows = (await session.execute(select(items.c.name, items.c.n).order_by(items.c.id))).all()
        assert rows == [("a", 1), ("b", 12), ("c", 13), ("d", 14)]
        assert (await session.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
    async with sessions() as session:  # a server-side cursor (stream) keeps SQLAlchemy's own
        streamed = [row async for row in await session.stream(select(items.c.name).order_by(items.c.id))]
        assert [r.name for r in streamed] == ["a", "b", "c", "d"]


async def test_driver_errors_are_sqlalchemys_and_roll_the_transaction_back(sessions: Any) -> None:
    with pytest.raises(IntegrityError):
        async with sessions() as session, session.begin():
            await session.execute(insert(items).values(name="x"))
            await session.execute(insert(items).values(name="x"))
    with pytest.raises(OperationalError):
        async with sessions() as session, session.begin():
            await session.execute(text("SELECT * FROM no_such_table"))
    async with sessions() as session:  # closed with its transaction open: the rollback is not skipped
        await session.execute(insert(items).values(name="left open"))
    async with sessions() as session, session.begin():
        assert (await session.execute(select(items))).all() == []  # nothing of the three transactions
        await session.execute(insert(items).values(name="y"))  # and the connection is not left in one
