"""``make bench``: the metrics hot path against bare aiokafka and the database floor, and the other sections.

Sections (``--only`` takes a comma-separated list; all run by default):

- ``hotpath`` (bench/hotpath.py): per workload (bench/workload.py: realistic, unique users, import) and per
  backend: the bare consumer, the database floor (bench/floor.py), the service's usage consumer with CPU per
  event of the service, broker and database; HTTP ingest against a tuned bare producer; posted → visible
  latency at half the drain rate;
- ``keys`` (bench/keys.py): dedup key designs at driver level, µs per key, new and duplicate;
- ``profile`` (bench/profile.py): where the usage handler path spends its time (cProfile);
- ``risk`` (bench/risk.py): churn-risk training and scoring on a full-size simulated book;
- ``console`` (bench/console.py): the console's render times with 1,000 accounts.

``--quick`` runs smaller sizes (a minute or two); PostgreSQL lines run when its server answers
(``BENCH_DATABASE_URL`` or ``TEST_DATABASE_URL``, default the test server).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import tempfile
import time
import uuid
from pathlib import Path

from deploy.pgcheck import reachable
from shared.events.broker import EmbeddedBroker

PG_URL = os.environ.get("BENCH_DATABASE_URL") or os.environ.get(
    "TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
SECTIONS = ("hotpath", "keys", "profile", "risk", "console")


async def hotpath_section(args: argparse.Namespace, backends: list[str], workdir: Path) -> None:
    from bench import hotpath, workload

    workloads = [workload.build(name, args.events) for name in args.workloads]
    with EmbeddedBroker() as broker:
        assert broker.process is not None
        print(f"metrics hot path: {args.events:,} events per workload, embedded broker {broker.bootstrap} "
              f"(pid {broker.process.pid}), {hotpath.PARTITIONS} partitions, backends: {', '.join(backends)}; "
              "cpu: this process (the service; SQLite in it), the broker, PostgreSQL's processes", flush=True)
        figures = await hotpath.run(workloads, backends, bootstrap=broker.bootstrap, broker_pid=broker.process.pid,
                                    workdir=workdir, pg_url=PG_URL, latency_seconds=args.latency_seconds,
                                    parts=args.parts)
    for text in hotpath.summary(figures, backends):
        print(text)


async def risk_section(backends: list[str], workdir: Path, accounts: int) -> None:
    from bench import hotpath
    from bench.risk import report, risk_bench

    with EmbeddedBroker() as broker:
        for backend in backends:
            async with hotpath.database(backend, workdir, PG_URL) as url, hotpath.running(
                    url, broker.bootstrap, f"r{uuid.uuid4().hex[:6]}.", workdir, run_consumers=False,
                    run_relay=False, health_interval=3600, risk_check_interval=3600) as (_, ctx):
                for text in report(backend, await risk_bench(ctx, accounts, 18)):
                    print(text, flush=True)


async def main(args: argparse.Namespace) -> None:
    # Each app the bench starts instruments itself again; OpenTelemetry says so every time.
    logging.getLogger("opentelemetry.instrumentation.instrumentor").setLevel(logging.ERROR)
    backends = [b for b in args.backends if b == "sqlite" or await reachable(PG_URL)]
    if "postgresql" in args.backends and "postgresql" not in backends:
        print(f"PostgreSQL not reachable at {PG_URL}: SQLite only")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for section in args.only:
            started = time.perf_counter()
            print(f"\n=== {section} ===", flush=True)
            if section == "hotpath":
                await hotpath_section(args, backends, workdir)
            elif section == "keys":
                from bench import keys

                await keys.run(backends, PG_URL, workdir, existing=args.existing_keys, per_tx=10_000)
            elif section == "profile":
                from bench import profile

                await profile.run(workdir, events=10_000, top=args.top)
            elif section == "risk":
                await risk_section(backends, workdir, args.risk_accounts)
            elif section == "console":
                from bench.console import run as console_render

                await console_render(args.console_accounts)
            print(f"({section}: {time.perf_counter() - started:.0f} s)", flush=True)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections, in order (default: {','.join(SECTIONS)})")
    parser.add_argument("--quick", action="store_true", help="small sizes: 20k events, 100k existing keys, "
                        "no risk section unless --only names it")
    parser.add_argument("--events", type=int, help="events per workload (default 100000; quick 20000)")
    parser.add_argument("--workloads", default="realistic,unique,import",
                        help="comma-separated: realistic, unique, import (the first also feeds HTTP ingest)")
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--parts", default="floor,drain,ingest,latency",
                        help="hotpath parts: floor, drain, ingest, latency")
    parser.add_argument("--latency-seconds", type=float, help="how long events are posted for the latency "
                        "(default 20; quick 8)")
    parser.add_argument("--existing-keys", type=int, help="keys already stored in the key bench (default "
                        "1000000; quick 100000)")
    parser.add_argument("--top", type=int, default=25, help="functions listed by the profile (25)")
    parser.add_argument("--risk-accounts", type=int, default=200, help="accounts in the churn-risk book (200)")
    parser.add_argument("--console-accounts", type=int, default=1000, help="accounts for the console render bench")
    args = parser.parse_args(argv)
    only_given = "--only" in (argv if argv is not None else __import__("sys").argv)
    args.only = [s for s in args.only.split(",") if s]
    if args.quick and not only_given:
        args.only = [s for s in args.only if s != "risk"]
    if unknown := set(args.only) - set(SECTIONS):
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    args.workloads = [w for w in args.workloads.split(",") if w]
    args.backends = [b for b in args.backends.split(",") if b]
    args.parts = [p for p in args.parts.split(",") if p]
    args.events = args.events or (20_000 if args.quick else 100_000)
    args.latency_seconds = args.latency_seconds or (8.0 if args.quick else 20.0)
    args.existing_keys = args.existing_keys if args.existing_keys is not None else (
        100_000 if args.quick else 1_000_000)
    return args


if __name__ == "__main__":
    asyncio.run(main(parse()))
