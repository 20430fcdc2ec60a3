"""CPU seconds of the bench process, the embedded broker and PostgreSQL, read from /proc (no psutil)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | str = "self") -> float:
    """utime + stime of one process (all its threads), in seconds; 0 when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # fields 14 and 15 of proc(5)


def postgres_processes() -> dict[int, float]:
    """CPU seconds of every process named ``postgres`` on this machine (backends, WAL writer, checkpointer)."""
    out: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
        except OSError:
            continue
        out[int(entry.name)] = cpu_seconds(entry.name)
    return out


@dataclass
class Usage:
    """CPU seconds used during a measurement."""

    service: float
    broker: float | None
    database: float | None  # None: in-process (SQLite)

    def per_event(self, n: int) -> str:
        def us(v: float | None, none: str) -> str:
            return none if v is None else f"{v / n * 1e6:6.1f}"
        return (f"cpu µs/event: service {us(self.service, '-'):>6} · broker {us(self.broker, '-'):>6} · "
                f"database {us(self.database, 'in-process'):>6}")


class Meter:
    """Snapshot, then :meth:`stop` for the CPU used since: this process (with the service's ``helpers``,
    e.g. a consumer's worker process), the broker, PostgreSQL's processes.

    PostgreSQL backends that exit during the measurement take their CPU with them (the bench's pools
    keep theirs open until after it ends); processes that start during it count from zero.
    """

    def __init__(self, broker_pid: int | None, *, postgres: bool, helpers: Sequence[int] = ()) -> None:
        self.broker_pid = broker_pid
        self.postgres = postgres
        self.helpers = list(helpers)
        self.service0 = self._service()
        self.broker0 = cpu_seconds(broker_pid) if broker_pid else 0.0
        self.pg0 = postgres_processes() if postgres else {}

    def _service(self) -> float:
        return cpu_seconds() + sum(cpu_seconds(pid) for pid in self.helpers)

    def stop(self) -> Usage:
        service = self._service() - self.service0
        broker = cpu_seconds(self.broker_pid) - self.broker0 if self.broker_pid else None
        database = None
        if self.postgres:
            database = sum(v - self.pg0.get(pid, 0.0) for pid, v in postgres_processes().items())
        return Usage(service, broker, database)
