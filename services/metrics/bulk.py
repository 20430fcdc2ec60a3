"""Set-based writes for the ingestion hot path, sent at driver level.

A batch of usage events becomes a handful of statements, each carrying every row at once:
``INSERT … SELECT FROM json_to_recordset($1)`` on PostgreSQL (the rows as one JSON document,
encoded by msgspec: measured faster than one array parameter per column) and a multi-row
``VALUES`` on SQLite. SQLAlchemy's per-row parameter processing costs more than the database
work at this volume, so these statements bypass it; everything else in the service goes through
the ORM and Core as usual.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import msgspec
from sqlalchemy import Table
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

_json = msgspec.json.Encoder()

# SQLite allows 32,766 bound parameters per statement; stay well below.
SQLITE_MAX_PARAMS = 30_000


def _processed(columns: list[Iterable[Any]], processors: Sequence[Callable[[Any], Any] | None]
               ) -> list[Iterable[Any]]:
    """Each column through its processor, called once per distinct value (a batch shares its receive
    time and has few days)."""
    out: list[Iterable[Any]] = []
    for column, process in zip(columns, processors, strict=True):
        if process is None:
            out.append(column)
        else:
            done = {v: process(v) for v in set(column)}
            out.append(map(done.__getitem__, column))
    return out


@dataclass(frozen=True)
class BulkInsert:
    """``INSERT INTO table (columns) <all rows> [ON CONFLICT (keys) DO NOTHING | DO UPDATE SET …] [RETURNING …]``.

    ``update`` maps a column to its SQL on conflict, written with ``{t}`` for the table's current
    row and ``{new}`` for the incoming one, e.g. ``"{t}.events + {new}.events"``.
    """

    table: Table
    columns: Sequence[str]
    conflict: Sequence[str] = ()
    update: dict[str, str] = field(default_factory=dict)
    returning: Sequence[str] = ()

    def _tail(self, new: str) -> str:
        sql = ""
        if self.conflict:
            sql += f" ON CONFLICT ({', '.join(self.conflict)}) "
            if self.update:
                sets = ", ".join(f"{c} = {e.format(t=self.table.name, new=new)}" for c, e in self.update.items())
                sql += f"DO UPDATE SET {sets}"
            else:
                sql += "DO NOTHING"
        if self.returning:
            sql += f" RETURNING {', '.join(self.returning)}"
        return sql

    def _head(self) -> str:
        return f"INSERT INTO {self.table.name} ({', '.join(self.columns)}) "

    def postgresql(self, dialect: Dialect) -> str:
        record = ", ".join(f"{c} {self.table.c[c].type.compile(dialect)}" for c in self.columns)
        # Identifiers and types come from the table's metadata, values only from the bound parameter.
        return (self._head() + f"SELECT {', '.join(self.columns)} "  # noqa: S608
                f"FROM json_to_recordset($1::json) AS r({record})" + self._tail("excluded"))

    def sqlite(self, rows: int) -> str:
        one = "(" + ", ".join("?" * len(self.columns)) + ")"
        return self._head() + "VALUES " + ", ".join([one] * rows) + self._tail("excluded")

    def _processors(self, names: Sequence[str], dialect: Dialect, *,
                    reading: bool) -> list[Callable[[Any], Any] | None]:
        # SQLAlchemy's own conversions for these columns on this dialect (e.g. a UTCDateTime becomes the
        # naive-UTC text SQLite stores and back): rows written here read back through the ORM as written.
        impls = [self.table.c[c].type.dialect_impl(dialect) for c in names]
        return [t.result_processor(dialect, None) if reading else t.bind_processor(dialect) for t in impls]

    async def execute(self, session: AsyncSession, rows: Sequence[tuple[Any, ...]]) -> Sequence[Sequence[Any]]:
        """Write ``rows`` (tuples in ``columns`` order) in the session's transaction.

        Returns the RETURNING rows with Python values (dates as ``date``, times as aware UTC ``datetime``).
        """
        if not rows:
            return []
        conn = await session.connection()
        dialect = conn.dialect
        out: list[Any] = []
        if dialect.name == "postgresql":
            names = self.columns
            document = _json.encode([dict(zip(names, row, strict=True)) for row in rows]).decode()
            result = await conn.exec_driver_sql(self.postgresql(dialect), (document,))
            return list(result.all()) if self.returning else []
        converters = self._processors(self.columns, dialect, reading=False)
        per_statement = max(1, SQLITE_MAX_PARAMS // len(self.columns))
        for start in range(0, len(rows), per_statement):
            chunk = rows[start:start + per_statement]
            columns = _processed(list(zip(*chunk, strict=True)), converters)
            params = tuple(chain.from_iterable(zip(*columns, strict=True)))
            result = await conn.exec_driver_sql(self.sqlite(len(chunk)), params)
            if self.returning:
                out.extend(result.all())
        readers = self._processors(self.returning, dialect, reading=True)
        if not out or not any(readers):
            return out  # rows unpack like tuples; copying them into tuples costs more than the insert
        return list(zip(*_processed(list(zip(*out, strict=True)), readers), strict=True))
