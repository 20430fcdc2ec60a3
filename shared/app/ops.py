"""Operations routes every service serves: ``/healthz``, ``/readyz``, ``/metrics``, and the docs."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from shared.app.context import ServiceContext
from shared.app.dependencies import get_ctx
from shared.events.outbox import outbox_backlog

log = logging.getLogger("postsales.app")


def ops_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @router.get("/readyz", summary="Readiness", responses={503: {"description": "database or broker down"}})
    async def readyz(request: Request) -> JSONResponse:
        """Ready when the database answers and the broker is reachable; 503 otherwise."""
        ctx = get_ctx(request)
        checks: dict[str, str] = {}
        try:
            async with ctx.engine.connect() as conn:
                await asyncio.wait_for(conn.execute(text("SELECT 1")), timeout=3)
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"down: {type(exc).__name__}"
        if ctx.settings.run_relay or ctx.settings.run_consumers:
            checks["broker"] = await _broker_check(ctx)
        consumers: dict[str, Any] = {}
        for consumer in ctx.consumers:
            healthy, detail = consumer.readiness()
            checks[f"consumer:{consumer.name}"] = "ok" if healthy else "degraded"
            if detail:
                consumers[consumer.name] = detail
        ok = all(v == "ok" for v in checks.values())
        body: dict[str, Any] = {"status": "ready" if ok else "unavailable", "checks": checks}
        if consumers:
            body["consumers"] = consumers
        return JSONResponse(body, status_code=200 if ok else 503)

    @router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    async def metrics(request: Request) -> PlainTextResponse:
        """Prometheus text exposition: requests, consumer lag, outbox backlog, DLQ count, latencies."""
        ctx = get_ctx(request)
        try:
            async with ctx.session_factory() as session:
                ctx.metrics.outbox_backlog.set(await outbox_backlog(session, ctx.infra.outbox))
        except Exception as exc:
            log.warning("metrics: outbox backlog unavailable (%s)", type(exc).__name__)
        return PlainTextResponse(generate_latest(ctx.metrics.registry).decode(),
                                 media_type=CONTENT_TYPE_LATEST)

    return router


async def _broker_check(ctx: ServiceContext[Any, Any]) -> str:
    producer = ctx.producer
    if producer is None or ctx.relay is None or not ctx.relay.started.is_set():
        return "down: not connected"
    try:
        await asyncio.wait_for(producer.client.fetch_all_metadata(), timeout=3)
        return "ok"
    except Exception as exc:
        return f"down: {type(exc).__name__}"


DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"


def install_offline_docs(app: FastAPI) -> None:
    """Serve /docs and /redoc with self-hosted assets: they work inside a closed network."""
    app.mount("/docs-assets", StaticFiles(directory=DOCS_ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json", title=f"{app.title} - API docs",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js", swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title=f"{app.title} - API reference",
                              redoc_js_url="/docs-assets/redoc.standalone.js",
                              redoc_favicon_url="/docs-assets/favicon.png", with_google_fonts=False)
