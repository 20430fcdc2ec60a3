"""Helpers for the notifier tests: a real local HTTP receiver, an SMTP sink, event injection."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from services.notifier.alerts.service import evaluate
from services.notifier.models import Alert, Delivery, DeliveryAttempt
from shared.events import CloudEvent
from shared.testing import RunningService

# Fast loops and tiny backoffs so retries play out in seconds.
FAST: dict[str, Any] = {
    "evaluation_interval": 0.05,
    "delivery_poll_interval": 0.05,
    "delivery_base_delay": 0.1,
    "delivery_max_delay": 0.4,
    "delivery_timeout": 2.0,
    "delivery_lease": 5.0,
    "suppressed_recheck": 0.2,
    "lifecycle_public_url": "https://lifecycle.example.test",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class Receiver:
    """A minimal HTTP/1.1 server on 127.0.0.1 recording every request; ``status``/``delay`` steer it."""

    port: int = field(default_factory=free_port)
    status: int = 200
    delay: float = 0.0
    requests: list[Request] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def start(self) -> Receiver:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for w in list(self._writers):
                w.close()
            await self._server.wait_closed()
            self._server = None

    def by_path(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                headers = {k.strip().lower(): v.strip()
                           for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if self.delay:
                    await asyncio.sleep(self.delay)
                status = self.status
                self.requests.append(Request(path, headers, body, status))
                writer.write(f"HTTP/1.1 {status} X\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok"
                             .encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    try:
        yield r
    finally:
        await r.stop()


class _Sink:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                              "data": envelope.content.decode("utf-8", "replace")})
        return "250 OK"


@pytest.fixture
def smtp_sink() -> Iterator[tuple[_Sink, int]]:
    sink = _Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


async def inject(svc: RunningService, event: CloudEvent) -> None:
    """Apply an event as the consumer would (for tests that don't need the broker round trip)."""
    async with svc.ctx.session_factory() as session, session.begin():
        await evaluate(session, svc.ctx.extension.engine, event)


async def alerts(svc: RunningService, **where: Any) -> list[Alert]:
    async with svc.ctx.session_factory() as s:
        stmt = select(Alert).filter_by(**where).order_by(Alert.created_at)
        return list((await s.execute(stmt)).scalars().all())


async def deliveries(svc: RunningService, **where: Any) -> list[Delivery]:
    async with svc.ctx.session_factory() as s:
        stmt = select(Delivery).filter_by(**where).order_by(Delivery.created_at)
        return list((await s.execute(stmt)).scalars().all())


async def attempts(svc: RunningService, delivery_id: str) -> list[DeliveryAttempt]:
    async with svc.ctx.session_factory() as s:
        stmt = select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == delivery_id) \
            .order_by(DeliveryAttempt.number)
        return list((await s.execute(stmt)).scalars().all())


async def webhook_channel(svc: RunningService, url: str, name: str = "hook", **extra: Any) -> dict[str, Any]:
    r = await svc.client.post("/v1/channels", json={"name": name, "kind": "webhook", "url": url, **extra})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def rule(svc: RunningService, **fields: Any) -> dict[str, Any]:
    r = await svc.client.post("/v1/rules", json=fields)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def builtin_rule(svc: RunningService, name: str) -> dict[str, Any]:
    items = (await svc.client.get("/v1/rules", params={"limit": 500})).json()["items"]
    found: dict[str, Any] = next(r for r in items if r["name"] == name)
    return found


async def update_rule(svc: RunningService, current: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body = {k: v for k, v in current.items() if k not in ("id", "builtin", "created_at", "updated_at")}
    body.update(changes)
    r = await svc.client.put(f"/v1/rules/{current['id']}", json=body)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out

