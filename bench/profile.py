"""Where the usage handler path spends its time: cProfile of decode + batch handler on realistic batches.

The path is what the usage consumer runs per fetched batch once Kafka has handed over the bytes: the
msgspec decoder (``UsageDecoder``) per message, then the batch handler (``apply_usage_batch``) in one
transaction on a freshly migrated database. ``batches`` transactions of ``events`` realistic events
(bench/workload.py) are profiled after one unprofiled warm-up transaction. cProfile sees the event loop's
thread only: time the driver spends on its own thread (aiosqlite's) shows as the loop waiting in
``select.epoll.poll``, reported below as "waiting".

``--drain N`` profiles the whole usage consumer instead (fetch, decode, pipeline, handler, offsets) while it
drains N realistic events from the embedded broker.

Prints the wall time per event, own time grouped by layer, then the top functions by own and by cumulative
time. ``python -m bench.profile [--backend postgresql] [--events N] [--batches B] [--top K] [--drain N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bench.workload import realistic
from services.metrics.usage import service as usage
from services.metrics.usage.envelope import UsageDecoder
from shared.db import create_engine, create_sessionmaker

LAYERS = (  # (layer, substrings of the function's file or name), first match wins
    ("waiting (epoll: the driver's thread, the broker)", ("select.epoll",)),
    ("msgspec decoding", ("msgspec", "usage/envelope.py", "validation.py")),
    ("consumer pipeline (shared/events/consumer)", ("/shared/events/consumer/",)),
    ("usage handler (services/metrics/usage)", ("/services/metrics/usage/",)),
    ("other service code (services/, shared/)", ("/services/", "/shared/")),
    ("aiokafka", ("aiokafka", "/kafka/")),
    ("SQLAlchemy", ("sqlalchemy",)),
    ("driver (aiosqlite / sqlite3 / asyncpg)", ("aiosqlite", "sqlite3", "asyncpg")),
    # cProfile books part of a resumed coroutine's own time under Context.run: read it with the service's.
    ("asyncio (and resumed coroutines)", ("asyncio", "_asyncio", "selectors", "_contextvars")),
)


def layer_of(filename: str, name: str) -> str:
    where = f"{filename}:{name}"
    for layer, needles in LAYERS:
        if any(n in where for n in needles):
            return layer
    return "other (builtins, stdlib)"


def by_layer(stats: pstats.Stats) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for (filename, _, name), (_, _, own, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        out[layer_of(filename, name)] += own
    return dict(out)


def _short(func: tuple[str, int, str]) -> str:
    filename, line, name = func
    if filename == "~":
        return name
    for root in ("site-packages/", os.getcwd() + "/"):
        if root in filename:
            filename = filename.split(root, 1)[1]
    return f"{filename}:{line}({name})"


def top(stats: pstats.Stats, key: int, n: int) -> list[tuple[str, int, float, float]]:
    """(function, calls, own s, cumulative s), sorted by own (key=2) or cumulative (key=3) time."""
    rows: list[tuple[str, int, float, float]] = [
        (_short(f), nc, own, cum) for f, (_, nc, own, cum, _) in stats.stats.items()]  # type: ignore[attr-defined]
    return sorted(rows, key=lambda r: -float(r[key]))[:n]


async def profile(url: str, messages: Sequence[Sequence[bytes]]) -> tuple[pstats.Stats, float, int]:
    """Decode and apply each batch of ``messages`` in its own transaction; the first one unprofiled."""
    engine = create_engine(url)
    sessions = create_sessionmaker(engine)
    decode = UsageDecoder()
    # The consumer's handler (with its active-user cache) where there is one; before issue #14, the function.
    handler: Callable[[AsyncSession, list[Any]], Awaitable[None]] = (
        usage.UsageHandler() if hasattr(usage, "UsageHandler") else usage.apply_usage_batch)

    async def apply(batch: Sequence[bytes]) -> None:
        events = [decode(raw, "usage") for raw in batch]
        async with sessions() as session, session.begin():
            await handler(session, events)

    try:
        await apply(messages[0])
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        for batch in messages[1:]:
            await apply(batch)
        profiler.disable()
        elapsed = time.perf_counter() - started
    finally:
        await engine.dispose()
    return pstats.Stats(profiler), elapsed, sum(len(b) for b in messages[1:])


def report(stats: pstats.Stats, elapsed: float, n: int, top_n: int) -> list[str]:
    total = sum(by_layer(stats).values())
    out = [f"  {n:,} events in {elapsed:.2f} s: {elapsed / n * 1e6:.1f} µs/event wall "
           f"(profiled: cProfile adds its own overhead to every Python call)", "  own time by layer:"]
    for layer, own in sorted(by_layer(stats).items(), key=lambda kv: -kv[1]):
        out.append(f"    {layer:<42} {own / n * 1e6:6.1f} µs/event  {own / total:5.1%}")
    for title, key in (("own", 2), ("cumulative", 3)):
        out.append(f"  top {top_n} by {title} time (µs/event: own, cumulative; calls):")
        for name, calls, own, cum in top(stats, key, top_n):
            out.append(f"    {own / n * 1e6:6.2f} {cum / n * 1e6:7.2f}  {calls:>8}  {name[:110]}")
    return out


async def run(workdir: Path, *, events: int = 10_000, batches: int = 5, top: int = 25, backend: str = "sqlite",
              pg_url: str | None = None) -> None:
    from bench.hotpath import database

    w = realistic(events * (batches + 1), seed=11)
    values = [v for _, v in w.messages]
    messages = [values[i:i + events] for i in range(0, len(values), events)]
    name = "UsageHandler" if hasattr(usage, "UsageHandler") else "apply_usage_batch"
    print(f"profile: decode + {name}, {backend}, {batches} transactions of {events:,} realistic events "
          "(after one warm-up)", flush=True)
    async with database(backend, workdir, pg_url or "") as url:
        stats, elapsed, n = await profile(url, messages)
    for text in report(stats, elapsed, n, top):
        print(text, flush=True)


async def run_drain(workdir: Path, *, events: int = 100_000, top: int = 25, backend: str = "sqlite",
                    pg_url: str | None = None) -> None:
    """cProfile of the whole usage consumer (fetch, decode, handler, offsets) draining ``events`` realistic
    events from the embedded broker, from the partitions' assignment to the last event applied."""
    from bench import hotpath
    from shared.events.broker import EmbeddedBroker
    from shared.events.registry import USAGE_TOPIC

    w = realistic(events, seed=11)
    print(f"profile: the usage consumer draining {events:,} realistic events, {backend}", flush=True)
    with EmbeddedBroker() as broker:
        prefix = f"p{os.getpid()}."
        await hotpath.topics_for(broker.bootstrap, prefix)
        await hotpath.bare_produce(broker.bootstrap, prefix + USAGE_TOPIC, w.messages)
        async with hotpath.database(backend, workdir, pg_url or "") as url, hotpath.running(
                url, broker.bootstrap, prefix, workdir, health_interval=3600) as (_, ctx):
            consumer = hotpath.usage_consumer(ctx)
            await hotpath.assigned(consumer)
            profiler = cProfile.Profile()
            started = time.perf_counter()
            profiler.enable()
            while (hotpath.settled(consumer) or 0) < events:  # noqa: ASYNC110 - polling the consumer's counters
                await asyncio.sleep(0.005)
            profiler.disable()
            elapsed = time.perf_counter() - started
    for text in report(pstats.Stats(profiler), elapsed, events, top):
        print(text, flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", default="sqlite", choices=("sqlite", "postgresql"))
    parser.add_argument("--events", type=int, default=10_000, help="events per transaction (10000)")
    parser.add_argument("--batches", type=int, default=5, help="profiled transactions (5)")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--drain", type=int, metavar="N", help="profile the whole usage consumer draining N events")
    args = parser.parse_args()
    pg = os.environ.get("BENCH_DATABASE_URL") or os.environ.get(
        "TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    with tempfile.TemporaryDirectory() as tmp:
        if args.drain:
            asyncio.run(run_drain(Path(tmp), events=args.drain, top=args.top, backend=args.backend, pg_url=pg))
        else:
            asyncio.run(run(Path(tmp), events=args.events, batches=args.batches, top=args.top,
                            backend=args.backend, pg_url=pg))
