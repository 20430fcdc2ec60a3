"""Retry policy and error classification: an outage is waited out, anything else is retried a bounded
number of times and then isolated and dead-lettered.

Only a real outage of the database (or of the network to it) is waited out without limit, with no DLQ
and no offset moving: the events are fine and will apply once it is back. That is:

- connection refused / reset / aborted, host or network unreachable, DNS failure (``ConnectionError`` and
  ``OSError`` with such an errno; asyncio's "Multiple exceptions: Connect call failed" too);
- timeouts (``TimeoutError``, SQLAlchemy's pool timeout);
- a connection SQLAlchemy reports as invalidated (a disconnect it recognised);
- PostgreSQL SQLSTATE class 08 (connection exception), 57P01-57P03 (the server is shutting down,
  crashed, or not accepting connections yet), 53300 (too many connections), asyncpg's "connection is
  closed";
- SQLite ``SQLITE_BUSY`` / ``SQLITE_LOCKED`` ("database is locked"): another connection holds the file.

Everything else is a property of the event or of the code that handles it, even when the driver files it
under ``OperationalError``: SQLite's "no such table", PostgreSQL's undefined table, a constraint violation,
a bug. Waiting would stall the partition forever, so those get bounded retries, then isolation, then the DLQ.
A statement timeout (57014), a deadlock or a serialization failure is not an outage either: the retries
usually get past it, and one that keeps happening on the same event belongs in the DLQ.
"""

from __future__ import annotations

import errno
import socket
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

_OUTAGE_ERRNOS = frozenset({
    errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE, errno.ETIMEDOUT,
    errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN, errno.EHOSTDOWN,
})
# 08xxx: connection exception; 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now;
# 53300 too_many_connections (the server refuses one more connection: a refusal like any other).
_OUTAGE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})
_SQLITE_BUSY = ("SQLITE_BUSY", "SQLITE_LOCKED")
_SQLITE_BUSY_TEXT = ("database is locked", "database table is locked", "database is busy")
_CLOSED_TEXT = ("connection is closed", "connection was closed", "connect call failed")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long a failing batch is tried again."""

    max_retries: int = 3  # tries after the first, for an error that is not an outage
    backoff: float = 0.2  # the first retry's delay; doubles per retry
    outage_backoff_cap: float = 5.0  # waiting out an outage, the delay grows to this

    def retry_delay(self, attempt: int) -> float:
        """The delay before retry ``attempt`` (1-based) of an error that is not an outage."""
        return float(self.backoff * 2 ** (attempt - 1))

    def outage_delay(self, attempt: int) -> float:
        """The delay before trying again during an outage (never zero: no busy loop)."""
        return float(max(0.05, min(self.backoff * 2 ** min(attempt, 6), self.outage_backoff_cap)))


def is_infrastructure_error(exc: BaseException) -> bool:
    """Whether ``exc`` means the database is unreachable or busy (an outage), rather than a bad event."""
    return any(_is_outage(e) for e in _chain(exc))


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, the driver error SQLAlchemy wraps, and their causes."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo and len(seen) < 16:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        orig = getattr(e, "orig", None)
        todo.extend([orig if isinstance(orig, BaseException) else None, e.__cause__, e.__context__])


def _is_outage(e: BaseException) -> bool:
    if isinstance(e, DBAPIError) and e.connection_invalidated:
        return True
    if isinstance(e, ConnectionError | TimeoutError | socket.gaierror | PoolTimeoutError):
        return True
    if isinstance(e, OSError):
        return e.errno in _OUTAGE_ERRNOS or (e.errno is None and _mentions(e, _CLOSED_TEXT))
    if isinstance(e, sqlite3.Error):
        name = getattr(e, "sqlite_errorname", None) or ""
        return name.startswith(_SQLITE_BUSY) or _mentions(e, _SQLITE_BUSY_TEXT)
    sqlstate = getattr(e, "sqlstate", None) or getattr(e, "pgcode", None)
    if isinstance(sqlstate, str) and (sqlstate.startswith("08") or sqlstate in _OUTAGE_SQLSTATES):
        return True
    # asyncpg raises these without a SQLSTATE when the server goes away mid-query.
    return type(e).__name__ in {"ConnectionDoesNotExistError", "ConnectionFailureError"} or (
        type(e).__module__.startswith("asyncpg") and _mentions(e, _CLOSED_TEXT))


def _mentions(e: BaseException, texts: tuple[str, ...]) -> bool:
    message = str(e).lower()
    return any(t in message for t in texts)
