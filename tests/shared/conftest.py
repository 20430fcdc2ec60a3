from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from shared.app import create_service_app
from shared.db import create_engine
from shared.settings import ServiceSettings
from shared.testing import ADMIN_TOKEN, RunningService
from tests.shared import demo


class DemoSettings(ServiceSettings):
    service_name = "demo"


async def create_demo_tables(url: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(demo.Base.metadata.create_all)  # demo tables plus the infrastructure tables
    await engine.dispose()


@pytest.fixture
def demo_service(service_settings: Callable[..., Any]) -> Callable[..., Any]:
    """``async with demo_service(batch=False, planner=None, database_url=None, **settings)`` -> RunningService."""

    @contextlib.asynccontextmanager
    async def start(*, batch: bool = False, consumer_name: str = "demo-consumer",
                    planner: demo.DemoPlanner | None = None, **overrides: Any) -> AsyncIterator[RunningService]:
        settings = service_settings("demo", settings_cls=DemoSettings, **overrides)
        await create_demo_tables(settings.effective_database_url)
        app = create_service_app(demo.definition(batch=batch, consumer_name=consumer_name, planner=planner),
                                 settings)
        async with app.router.lifespan_context(app):
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                                       base_url="http://testserver",
                                       headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
            async with client:
                yield RunningService(name="demo", app=app, client=client, settings=settings)

    return start


async def count(svc: RunningService, model: Any) -> int:
    async with svc.ctx.session_factory() as s:
        return int((await s.execute(select(func.count()).select_from(model))).scalar_one())
