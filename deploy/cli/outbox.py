"""``postsales outbox``: each service's outbox backlog, read from its own database."""

from __future__ import annotations

import asyncio
import importlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from deploy.cli.common import SERVICES, JsonOut, emit, fail, run, suite_database_url
from shared.db import create_engine, infra_tables, service_metadata, utcnow


@dataclass
class Backlog:
    service: str
    pending: int | None = None
    failing: int | None = None
    oldest_age_seconds: float | None = None
    last_error: str | None = None
    error: str | None = None


def database_url(service: str) -> str:
    """The service's database URL, read from the environment by the service's own settings class."""
    from_suite = suite_database_url(service)
    if from_suite:
        return from_suite
    settings_mod = importlib.import_module(f"services.{service}.settings")
    url = str(settings_mod.Settings().effective_database_url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").exists():
        raise ValueError(f"no database at {parsed.database} (set DATABASE_URL or migrate first)")
    return url


async def outbox_backlog(service: str, url: str) -> Backlog:
    outbox = infra_tables(service_metadata()).outbox
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            pending = outbox.c.published_at.is_(None)
            count, failing, oldest = (await conn.execute(select(
                func.count(), func.count().filter(outbox.c.attempts > 0), func.min(outbox.c.created_at),
            ).where(pending))).one()
            last_error = (await conn.execute(
                select(outbox.c.last_error).where(pending, outbox.c.last_error.is_not(None))
                .order_by(outbox.c.id.desc()).limit(1))).scalar_one_or_none()
    except Exception as exc:
        return Backlog(service, error=f"database: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
    finally:
        await engine.dispose()
    age = round((utcnow() - oldest).total_seconds(), 1) if oldest is not None else None
    return Backlog(service, pending=int(count), failing=int(failing), oldest_age_seconds=age,
                   last_error=last_error[:200] if last_error else None)


def outbox(
    service: Annotated[list[str] | None, typer.Option(help="Only this service (repeatable).")] = None,
    as_json: JsonOut = False,
) -> None:
    """Outbox backlog per service: unpublished events, how many failed to publish, the oldest one's age.

    Each service's database is found as the service finds it: DATABASE_URL or <SERVICE>_DATABASE_URL.
    """
    names = service or list(SERVICES)
    unknown = set(names) - set(SERVICES)
    if unknown:
        raise fail(f"unknown service(s) {sorted(unknown)}; one of: {', '.join(SERVICES)}", code=2)

    urls: dict[str, str] = {}
    broken: dict[str, Backlog] = {}
    for name in names:
        try:
            urls[name] = database_url(name)
        except Exception as exc:
            broken[name] = Backlog(name, error=f"configuration: {exc}")

    async def go() -> dict[str, Backlog]:
        found = await asyncio.gather(*(outbox_backlog(n, u) for n, u in urls.items()))
        return {b.service: b for b in found}

    found = run(go()) | broken
    rows = [found[n] for n in names]
    emit([asdict(r) for r in rows], ["service", "pending", "failing", "oldest_age_seconds", "last_error", "error"],
         as_json)
    if any(r.error for r in rows):
        raise typer.Exit(1)
