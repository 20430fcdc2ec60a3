"""Raw usage events as compressed segments, and the one aggregation both ingestion and recompute use.

A segment holds the new events of one transaction and one UTC day, in arrival order, each as
``[source, id, account_id, type, user_id, feature, quantity, time_us]`` (``time_us``: microseconds since
the Unix epoch, UTC), msgpack-encoded and compressed with zlib level 1. Days are day numbers since the
epoch inside this module (cheap to compute and to hash) and ``datetime.date`` outside.

Rollups stay exactly reproducible, floats included: a transaction adds, per rollup row, the sum of its
events in arrival order (``Aggregate``) to the stored value; recompute replays the segments in id order
and adds each segment's ``Aggregate`` the same way. Within one rollup row the segment ids follow the
order the additions were made in (segments are written after the rollups, whose row locks order
concurrent transactions on PostgreSQL; SQLite has one writer).
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
EPOCH_DATE = EPOCH.date()
US = dt.timedelta(microseconds=1)
DAY_US = 86_400_000_000
KEY_SEP = "\x1f"

# Row fields.
SOURCE, ID, ACCOUNT, TYPE, USER, FEATURE, QUANTITY, TIME = range(8)

Row = tuple[Any, ...]

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[tuple[str, str, str, str, str, str | None, float, int]])


def pack(rows: Sequence[Row]) -> bytes:
    return _encoder.encode(rows)


def compress(packed: bytes) -> bytes:
    return zlib.compress(packed, 1)


def encode(rows: Sequence[Row]) -> bytes:
    return compress(pack(rows))


def unpack(packed: bytes) -> list[tuple[str, str, str, str, str, str | None, float, int]]:
    return _decoder.decode(packed)


def decode(data: bytes) -> list[tuple[str, str, str, str, str, str | None, float, int]]:
    return unpack(zlib.decompress(data))


def key_of(source: str, event_id: str) -> str:
    return source + KEY_SEP + event_id


_dates: dict[int, dt.date] = {}


def date_of(day: int) -> dt.date:
    """The date of a day number (cached: a batch has few days)."""
    d = _dates.get(day)
    if d is None:
        if len(_dates) > 100_000:
            _dates.clear()
        d = _dates[day] = EPOCH_DATE + dt.timedelta(days=day)
    return d


def day_number(day: dt.date) -> int:
    return (day - EPOCH_DATE).days


def time_of(us: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=us)


class Aggregate:
    """What a set of rows adds to the rollups: per day, per account, a cell
    ``[sum quantity, count, max time_us, {type: sum}, {feature: sum}, {user_id}]``.

    Nested by day and account rather than keyed by tuples: the hot path adds ~10k rows a transaction and
    a tuple key per row and rollup table was most of the cost.
    """

    __slots__ = ("days",)

    def __init__(self) -> None:
        self.days: dict[int, dict[str, list[Any]]] = {}

    def add(self, day: int, rows: Iterable[Sequence[Any]], account: str | None = None) -> None:
        """Add one day's rows, in arrival order (only ``account``'s, when given)."""
        cells = self.days.get(day)
        if cells is None:
            cells = self.days[day] = {}
        for row in rows:
            a = row[ACCOUNT]
            if account is not None and a != account:
                continue
            q = row[QUANTITY]
            f = row[FEATURE]
            cell = cells.get(a)
            if cell is None:
                cells[a] = [q, 1, row[TIME], {row[TYPE]: q}, {} if f is None else {f: q}, {row[USER]}]
                continue
            cell[0] += q
            cell[1] += 1
            if row[TIME] > cell[2]:
                cell[2] = row[TIME]
            sums = cell[3]
            k = row[TYPE]
            s = sums.get(k)
            sums[k] = q if s is None else s + q
            if f is not None:
                sums = cell[4]
                s = sums.get(f)
                sums[f] = q if s is None else s + q
            cell[5].add(row[USER])

    def cells(self) -> list[tuple[str, int, list[Any]]]:
        """(account, day, cell) in key order."""
        return sorted(((a, d, c) for d, cells in self.days.items() for a, c in cells.items()),
                      key=lambda x: (x[0], x[1]))

    def users(self) -> set[tuple[str, int, str]]:
        return {(a, d, u) for d, cells in self.days.items() for a, c in cells.items() for u in c[5]}

    def accounts(self) -> set[str]:
        return {a for cells in self.days.values() for a in cells}


@dataclass
class Totals:
    """Rollups rebuilt by replaying segments in id order: each segment's ``Aggregate`` added as ingestion did."""

    daily: dict[tuple[str, int], list[Any]] = field(default_factory=dict)  # [events, count, max time_us]
    types: dict[tuple[str, int, str], float] = field(default_factory=dict)
    features: dict[tuple[str, int, str], float] = field(default_factory=dict)
    users: set[tuple[str, int, str]] = field(default_factory=set)
    events: int = 0

    def add(self, part: Aggregate) -> None:
        for d, cells in part.days.items():
            for a, (q, n, t, types, features, users) in cells.items():
                k = (a, d)
                cur = self.daily.get(k)
                if cur is None:
                    self.daily[k] = [q, n, t]
                else:
                    cur[0] += q  # the stored value + the transaction's sum, as the upsert computes it
                    cur[1] += n
                    if t > cur[2]:
                        cur[2] = t
                self.events += n
                for name, q in types.items():
                    tk = (a, d, name)
                    s = self.types.get(tk)
                    self.types[tk] = q if s is None else s + q
                for name, q in features.items():
                    fk = (a, d, name)
                    s = self.features.get(fk)
                    self.features[fk] = q if s is None else s + q
                self.users.update((a, d, u) for u in users)

    def active_users(self) -> dict[tuple[str, int], int]:
        out: dict[tuple[str, int], int] = {}
        for a, d, _ in self.users:
            out[(a, d)] = out.get((a, d), 0) + 1
        return out
