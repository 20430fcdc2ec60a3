from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from services.console.app import create_app
from services.console.settings import Settings
from shared.testing.helpers import RunningService
from tests.console.support import KEYS, SESSION_KEY

UPSTREAMS = ("handoff", "lifecycle", "metrics", "notifier")


@pytest.fixture
async def four(service) -> AsyncIterator[dict[str, RunningService]]:
    """The four services running in this process on one broker, with the console's test keys."""
    async with contextlib.AsyncExitStack() as stack:
        running = {}
        for name in UPSTREAMS:
            extra: dict[str, Any] = {"postsales_api_keys": KEYS}
            if name == "metrics":
                extra["health_interval"] = 0.3
            if name == "notifier":
                extra["evaluation_interval"] = 0.2
            running[name] = await stack.enter_async_context(service(name, **extra))
        yield running


def console_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"session_key": SESSION_KEY, "postsales_api_keys": KEYS}
    values.update(overrides)
    return Settings(**values)


class Down(httpx.AsyncBaseTransport):
    """A service that cannot be reached."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)


ConsoleFactory = Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def console(four: dict[str, RunningService]) -> ConsoleFactory:
    """``async with console(down={"metrics"}) as client`` — the console app over the four in-process services."""

    @contextlib.asynccontextmanager
    async def start(*, down: set[str] = frozenset(), **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[assignment]
        transports: dict[str, httpx.AsyncBaseTransport] = {
            name: Down() if name in down else httpx.ASGITransport(app=svc.app) for name, svc in four.items()}
        app = create_app(console_settings(**overrides), transports=transports)
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://console.test") as client:
            yield client

    return start
