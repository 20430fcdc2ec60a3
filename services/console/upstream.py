"""Calls to the four services' public APIs, always with the signed-in person's own token.

Every call answers with an :class:`Answer` instead of raising, so a page can render what it has and
say what it lacks: a service that is down, a scope the token does not carry, an endpoint that is not
there yet. Only a 401 (the token is no longer accepted) ends the session.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from services.console.settings import UPSTREAMS, Settings

log = logging.getLogger("postsales.console.upstream")
PAGE_LIMIT = 500


class SessionEnded(Exception):
    """A service no longer accepts the session's token (revoked or expired)."""


@dataclass
class Answer:
    """What one call to a service gave: ``status`` 0 means the service could not be reached."""

    service: str
    status: int
    data: Any = None
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def down(self) -> bool:
        return self.status == 0 or self.status in (502, 503, 504)

    @property
    def missing(self) -> bool:
        return self.status == 404

    @property
    def unsupported(self) -> bool:
        """The service has no such endpoint (yet): a 404 for the route itself, not for a missing record."""
        generic = self.detail in (None, "", "Not Found") or str(self.detail).startswith("no route for")
        return (self.status == 404 and generic) or self.status == 405

    @property
    def forbidden(self) -> bool:
        return self.status == 403


class Upstream:
    """One pooled HTTP client per service, shared by every request of the console."""

    def __init__(self, settings: Settings, transports: Mapping[str, httpx.AsyncBaseTransport] | None = None) -> None:
        transports = transports or {}
        self.clients = {
            name: httpx.AsyncClient(base_url=settings.upstream_url(name), transport=transports.get(name),
                                    timeout=settings.upstream_timeout, follow_redirects=False,
                                    headers={"Accept": "application/json", "User-Agent": "postsales-console"})
            for name in UPSTREAMS
        }

    async def close(self) -> None:
        await asyncio.gather(*(c.aclose() for c in self.clients.values()))

    async def call(self, service: str, method: str, path: str, token: str | None, *,
                   params: Mapping[str, Any] | None = None, json: Any = None,
                   accept: str | None = None) -> Answer:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if accept:
            headers["Accept"] = accept
        clean = {k: v for k, v in (params or {}).items() if v is not None and v != ""}
        try:
            r = await self.clients[service].request(method, path, params=clean, json=json, headers=headers)
        except httpx.HTTPError as exc:
            # The exception text can hold the URL but never the token (it travels in a header).
            log.warning("console: %s unreachable (%s)", service, type(exc).__name__)
            return Answer(service, 0, detail=f"{type(exc).__name__}")
        if r.status_code == 401 and token:
            raise SessionEnded(service)
        data: Any = None
        detail: str | None = None
        ctype = r.headers.get("content-type", "")
        if "json" in ctype:
            try:
                data = r.json()
            except ValueError:
                data = None
            if r.status_code >= 400 and isinstance(data, dict):
                detail = str(data.get("detail") or data.get("title") or "")
                if data.get("errors"):
                    detail += ": " + "; ".join(f"{'.'.join(map(str, e.get('loc', [])))} {e.get('msg')}"
                                               for e in data["errors"][:5])
        else:
            data = r.text
        return Answer(service, r.status_code, data, detail)


@dataclass
class Api:
    """The upstream as seen from one request: the person's token, and what went wrong on the way."""

    upstream: Upstream
    token: str | None
    down: set[str] = field(default_factory=set)
    denied: dict[str, str] = field(default_factory=dict)

    def _note(self, a: Answer) -> Answer:
        if a.down:
            self.down.add(a.service)
        elif a.forbidden:
            self.denied[a.service] = a.detail or "forbidden"
        return a

    async def get(self, service: str, path: str, **params: Any) -> Answer:
        return self._note(await self.upstream.call(service, "GET", path, self.token, params=params))

    async def post(self, service: str, path: str, body: Any = None) -> Answer:
        return self._note(await self.upstream.call(service, "POST", path, self.token, json=body))

    async def patch(self, service: str, path: str, body: Any) -> Answer:
        return self._note(await self.upstream.call(service, "PATCH", path, self.token, json=body))

    async def text(self, service: str, path: str, accept: str, **params: Any) -> Answer:
        return self._note(await self.upstream.call(service, "GET", path, self.token, params=params, accept=accept))

    async def every(self, service: str, path: str, cap: int, **params: Any) -> Answer:
        """Every item of a paged list (up to ``cap``), as one answer whose data is the list."""
        items: list[Any] = []
        cursor: str | None = None
        while True:
            a = await self.get(service, path, limit=PAGE_LIMIT, cursor=cursor, **params)
            if not a.ok:
                return a if not items else Answer(service, 200, items, a.detail)
            items.extend(a.data.get("items", []))
            cursor = a.data.get("next_cursor")
            if not cursor or len(items) >= cap:
                return Answer(service, 200, items[:cap])
