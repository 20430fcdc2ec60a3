"""The console's FastAPI app: pages, static files, sign-in, and the usual /healthz, /readyz, /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.console.pages import router as pages_router
from services.console.session import Session, SessionBox
from services.console.settings import UPSTREAMS, Settings
from services.console.upstream import SessionEnded, Upstream
from services.console.web import CsrfFailed, NeedSignIn, Page, SecurityHeaders, visitor
from shared.auth import KeyStore
from shared.observability import Metrics, RequestContextMiddleware
from shared.settings import ServiceSettings

STATIC = Path(__file__).parent / "static"
MIGRATIONS = None  # the console keeps no data of its own


def create_app(settings: ServiceSettings | None = None, *,
               transports: Mapping[str, httpx.AsyncBaseTransport] | None = None) -> FastAPI:
    """Build the console; settings default to the environment. ``transports`` (per service) is for tests."""
    settings = Settings.resolve(settings)
    metrics = Metrics("console")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.upstream = Upstream(settings, transports)
        try:
            yield
        finally:
            await app.state.upstream.close()

    app = FastAPI(title="Post-sales console", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.settings = settings
    app.state.box = SessionBox(settings.session_key)
    app.state.keystore = KeyStore(settings.postsales_api_keys)
    app.state.metrics = metrics
    app.add_middleware(SecurityHeaders, hsts=bool(settings.cookie_secure))
    app.add_middleware(RequestContextMiddleware, metrics=metrics, max_body_bytes=min(settings.max_body_bytes, 65_536))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        """Ready when the four services answer /healthz; the body names those that do not."""
        upstream: Upstream = request.app.state.upstream
        answers = await asyncio.gather(*(upstream.call(name, "GET", "/healthz", None) for name in UPSTREAMS))
        checks = {a.service: "ok" if a.ok else ("down" if a.status == 0 else f"status {a.status}") for a in answers}
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ready" if ok else "unavailable", "checks": checks},
                            status_code=200 if ok else 503)

    @app.get("/metrics")
    async def prometheus() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(metrics.registry).decode(), media_type=CONTENT_TYPE_LATEST)

    app.include_router(pages_router)

    async def page_of(request: Request) -> Page:
        page: Page | None = getattr(request.state, "page", None)
        return page if page is not None else await visitor(request)

    @app.exception_handler(NeedSignIn)
    async def need_sign_in(request: Request, exc: Exception) -> Response:
        page = await page_of(request)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET" or target == "/":
            return page.redirect("/signin")
        return page.redirect("/signin?next=" + urllib.parse.quote(target, safe="/"))

    @app.exception_handler(SessionEnded)
    async def session_ended(request: Request, exc: Exception) -> Response:
        page = await page_of(request)
        page.session = Session(flash=[("info", "Your session ended. Please sign in again.")])
        return page.redirect("/signin")

    @app.exception_handler(CsrfFailed)
    async def csrf_failed(request: Request, exc: Exception) -> Response:
        page = await page_of(request)
        return page.render("error.html", status_code=403,
                           message="The form expired or came from another site. Reload the page and try again.")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        page = await page_of(request)
        if exc.status_code == 404:
            return page.render("not_found.html", status_code=404, what=request.url.path)
        return page.render("error.html", status_code=exc.status_code, message=str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def bad_input(request: Request, exc: Exception) -> Response:
        page = await page_of(request)
        errors = exc.errors()[:5] if isinstance(exc, RequestValidationError) else []
        return page.render("error.html", status_code=422, message="; ".join(
            f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg')}" for e in errors))

    return app
