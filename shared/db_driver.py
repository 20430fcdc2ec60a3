"""SQLite through aiosqlite in one trip per statement.

aiosqlite runs each connection's calls on a thread of its own. SQLAlchemy's adapter makes three or
four calls per statement (open a cursor, execute, fetch the rows, close the cursor), and each call is
a hand-over between the event loop and that thread: the thread waits for the GIL, then the loop
wakes to take the result. While the loop is busy (a consumer reading its next batch), every hand-over
can wait a few milliseconds. :class:`OneTripDBAPI` makes a statement one call: the thread executes
it, fetches every row (SQLAlchemy's adapter fetches them all at once too) and closes the cursor.

Server-side cursors (``stream()``) keep SQLAlchemy's own cursor, which fetches as it goes.
Pass ``module=OneTripDBAPI()`` to ``create_async_engine`` for a ``sqlite+aiosqlite`` URL.

It builds on SQLAlchemy's adapter classes and on aiosqlite's ``_execute`` and ``_conn`` (the versions
pinned in ``constraints.txt``); ``tests/shared/test_db_driver.py`` counts the calls and checks the
results, so an upgrade that changes either fails there first.
"""

from __future__ import annotations

import collections
import sqlite3
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

# (rows, description, rowcount, lastrowid) of one statement
_Outcome = tuple[list[Any], Any, int, int | None]


def _run(conn: sqlite3.Connection, many: bool, operation: str, parameters: Any) -> _Outcome:
    """One statement, on the connection's own thread."""
    cur = conn.cursor()
    try:
        if many:
            cur.executemany(operation, parameters)
        elif parameters is None:
            cur.execute(operation)
        else:
            cur.execute(operation, parameters)
        rows = cur.fetchall() if cur.description else []
        return rows, cur.description, cur.rowcount, cur.lastrowid
    finally:
        cur.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A cursor whose statement is one call on aiosqlite's thread (it never opens an aiosqlite cursor)."""

    __slots__ = ("_arraysize", "_description", "_lastrowid", "_rowcount")
    _awaitable_cursor_close = False  # nothing is open to close

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._rows: collections.deque[Any] = collections.deque()
        self._soft_closed_memoized = EMPTY_DICT
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._arraysize = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> Any:
        return self._lastrowid

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    def execute(self, operation: Any, parameters: Any = None) -> None:  # DB-API leaves the return value open
        self._call(False, operation, parameters)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> None:
        self._call(True, operation, seq_of_parameters)

    def _call(self, many: bool, operation: Any, parameters: Any) -> None:
        try:
            await_(self._trip(many, operation, parameters))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    async def _trip(self, many: bool, operation: Any, parameters: Any) -> None:
        conn: Any = self._connection  # an aiosqlite.Connection; ``_execute`` runs a call on its thread
        async with self._adapt_connection._execute_mutex:
            rows, self._description, self._rowcount, self._lastrowid = await conn._execute(
                _run, conn._conn, many, operation, parameters)
        self._rows = collections.deque(rows)

    def close(self) -> None:
        self._rows.clear()

    def setinputsizes(self, *inputsizes: Any) -> None:
        return None

    def nextset(self) -> None:
        return None


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneTripCursor  # type: ignore[assignment]  # a subclass; the base declares its exact type

    def rollback(self) -> None:
        # The pool rolls back every connection it takes back, most of them after a COMMIT: with no
        # transaction open there is nothing to undo, and no call to make.
        try:
            idle = not self._connection._conn.in_transaction
        except ValueError:  # closed: let the adapter report it as it does
            idle = False
        if not idle:
            super().rollback()


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The aiosqlite DBAPI adapter of SQLAlchemy, with :class:`OneTripCursor` as its cursor."""

    def __init__(self) -> None:
        super().__init__(aiosqlite, sqlite3)

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        adapted = super().connect(*arg, **kw)
        return OneTripConnection(self, adapted._connection)
