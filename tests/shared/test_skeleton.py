"""The service skeleton: periodic loops (supervised, counted), typed settings, create_app settings."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from prometheus_client.parser import text_string_to_metric_families
from pydantic import Field

from services.handoff.settings import Settings as HandoffSettings
from shared.app import Periodic, ServiceContext, SettingsDep, create_service_app
from shared.settings import ServiceSettings
from shared.testing import ADMIN_TOKEN, eventually
from tests.shared import demo
from tests.shared.conftest import DemoSettings, create_demo_tables


class LoopSettings(DemoSettings):
    tick: float = Field(default=0.02, gt=0)
    ticking: bool = True


router = APIRouter(prefix="/v1")


@router.get("/tick")
async def read_tick(settings: SettingsDep[LoopSettings]) -> dict[str, Any]:
    """The typed settings of the app."""
    return {"tick": settings.tick, "class": type(settings).__name__}


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    out: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name:
                out[tuple(sorted(s.labels.items()))] = s.value
    return out


@contextlib.asynccontextmanager
async def running(settings: ServiceSettings, loops: list[Any]) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    await create_demo_tables(settings.effective_database_url)
    defn = dataclasses.replace(demo.definition(), consumers=None, routers=[router], loops=loops)
    app = create_service_app(defn, settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as client:
        yield app, client


@pytest.fixture
def loop_settings(service_settings: Callable[..., Any]) -> Callable[..., LoopSettings]:
    def build(**overrides: Any) -> LoopSettings:
        s: LoopSettings = service_settings("demo", settings_cls=LoopSettings, run_relay=False, run_consumers=False,
                                           **overrides)
        return s
    return build


async def test_periodic_loop_survives_failing_passes_and_counts_them(loop_settings) -> None:
    calls: list[int] = []

    async def flaky(ctx: ServiceContext[LoopSettings]) -> None:
        calls.append(len(calls))
        if len(calls) % 2 == 0:
            raise RuntimeError("every other pass fails")

    async with running(loop_settings(), [Periodic("flaky", every="tick", run=flaky)]) as (_, client):
        await eventually(lambda: _true(len(calls) >= 6), message="six passes")
        text = (await client.get("/metrics")).text
    passes = samples(text, "background_loop_passes_total")
    ok, failed = passes[(("loop", "flaky"), ("outcome", "ok"))], passes[(("loop", "flaky"), ("outcome", "failed"))]
    assert ok >= 3 and failed >= 3  # failing passes did not stop the loop
    assert abs(ok - failed) <= 1
    assert samples(text, "background_loop_last_success_timestamp_seconds")[(("loop", "flaky"),)] > 0


async def test_periodic_interval_and_enabled_come_from_settings(loop_settings) -> None:
    fast: list[None] = []
    off: list[None] = []

    async def count_fast(ctx: ServiceContext[LoopSettings]) -> None:
        fast.append(None)

    async def count_off(ctx: ServiceContext[LoopSettings]) -> None:
        off.append(None)

    loops = [Periodic("fast", every="tick", run=count_fast),
             Periodic("off", every=0.01, enabled="ticking", run=count_off)]
    async with running(loop_settings(tick=3600, ticking=False), loops):
        await eventually(lambda: _true(len(fast) >= 1), message="the first pass runs at once")
        await asyncio.sleep(0.3)
    # One pass, then an hour's wait (cut short by the stop); the disabled loop never ran.
    assert len(fast) == 1
    assert off == []


async def test_again_if_busy_runs_back_to_back_until_idle(loop_settings) -> None:
    backlog = [5]

    async def drain(ctx: ServiceContext[LoopSettings]) -> int:
        if backlog[0]:
            backlog[0] -= 1
            return 1
        return 0

    async with running(loop_settings(tick=3600), [Periodic("drain", every="tick", run=drain, again_if_busy=True)]):
        await eventually(lambda: _true(backlog[0] == 0), timeout=5, message="drained without waiting an interval")


async def test_stop_interrupts_the_wait(loop_settings) -> None:
    async def nothing(ctx: ServiceContext[LoopSettings]) -> None:
        return None

    loop = asyncio.get_running_loop()
    started = loop.time()
    async with running(loop_settings(tick=3600), [Periodic("idle", every="tick", run=nothing)]):
        pass
    assert loop.time() - started < 5


async def test_settings_dep_gives_the_service_settings(loop_settings) -> None:
    async with running(loop_settings(tick=0.5), []) as (_, client):
        assert (await client.get("/v1/tick")).json() == {"tick": 0.5, "class": "LoopSettings"}


@pytest.mark.db_independent
def test_resolve_turns_any_settings_into_the_service_class(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HANDOFF_OVERDUE_BATCH_SIZE", "7")
    base = ServiceSettings(kafka_topic_prefix="x.")
    s = HandoffSettings.resolve(base)
    assert isinstance(s, HandoffSettings)
    assert s.kafka_topic_prefix == "x." and s.overdue_batch_size == 7
    same = HandoffSettings()
    assert HandoffSettings.resolve(same) is same
    assert HandoffSettings.resolve(None).overdue_batch_size == 7


async def _true(value: bool) -> bool:
    return value


async def test_one_dialect_check_for_urls_engines_sessions_and_connections(database_factory, db_backend) -> None:
    from shared.db import create_engine, create_sessionmaker, dialect_name, is_postgresql, is_sqlite

    assert dialect_name("sqlite+aiosqlite:///x.db") == "sqlite"
    assert dialect_name("postgresql+asyncpg://u@h/db") == "postgresql"
    engine = create_engine(database_factory.new("handoff"))
    try:
        async with create_sessionmaker(engine)() as session, engine.connect() as conn:
            assert {dialect_name(engine), dialect_name(session), dialect_name(conn)} == {db_backend}
            assert is_postgresql(session) == (db_backend == "postgresql") != is_sqlite(session)
    finally:
        await engine.dispose()


@pytest.mark.db_independent
def test_a_loop_naming_a_missing_setting_or_a_taken_name_is_refused_at_creation() -> None:
    async def nothing(ctx: ServiceContext) -> None:
        return None

    settings = LoopSettings()
    for loops, message in (([Periodic("x", every="no_such_setting", run=nothing)], "no setting 'no_such_setting'"),
                           ([Periodic("x", every=1, enabled="nope", run=nothing)], "no setting 'nope'"),
                           ([Periodic("x", every=0, run=nothing)], "must be positive"),
                           ([Periodic("x", every=1, run=nothing), Periodic("x", every=2, run=nothing)], "unique"),
                           ([Periodic("retention", every=1, run=nothing)], "unique")):
        defn = dataclasses.replace(demo.definition(), consumers=None, routers=[router], loops=loops)
        with pytest.raises(ValueError, match=message):
            create_service_app(defn, settings)
