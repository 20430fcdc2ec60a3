"""The app factory every service uses: lifespan (engine, outbox relay, consumers, background
loops), error handlers, auth, request context, and the ``/healthz``, ``/readyz``, ``/metrics`` routes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import fastapi_offline
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared import tracing
from shared.auth import KeyStore, current_principal
from shared.db import InfraTables, create_engine, create_sessionmaker
from shared.errors import PROBLEM_RESPONSES, install_error_handlers
from shared.events import asyncapi
from shared.events.consumer import BatchHandler, Decoder, EventConsumer, EventHandler
from shared.events.kafka import ensure_topics, make_producer
from shared.events.outbox import Outbox, OutboxRelay, outbox_backlog
from shared.events.registry import TOPICS, dlq_topic
from shared.http import IdempotentReplay, replay_response
from shared.observability import Metrics, RequestContextMiddleware
from shared.settings import ServiceSettings

log = logging.getLogger("postsales.app")


@dataclass(frozen=True)
class ConsumerSpec:
    """A consumer group a service runs: its name (the group id), topics and handler."""

    name: str
    topics: Sequence[str]
    handler: EventHandler | None = None
    batch_handler: BatchHandler | None = None
    batch_size: int | None = None
    # False only for a handler that is idempotent by itself (e.g. inserts keyed by source + id with
    # ON CONFLICT DO NOTHING): the foundation then skips its processed_events bookkeeping.
    dedup: bool = True
    # A batch handler's own message decoder (raising InvalidEvent); default: CloudEvent + registry.
    decode: Decoder | None = None


@dataclass
class ServiceContext:
    """Everything a running service holds; on ``app.state.ctx``."""

    settings: ServiceSettings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    infra: InfraTables
    outbox: Outbox
    metrics: Metrics
    relay: OutboxRelay | None = None
    consumers: list[EventConsumer] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    producer: Any = None
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    state: dict[str, Any] = field(default_factory=dict)


BackgroundLoop = Callable[[ServiceContext], Awaitable[None]]


@dataclass
class ServiceDefinition:
    """What makes a service: its name, routers, consumers and background loops."""

    name: str
    title: str
    description: str
    infra: InfraTables
    routers: Sequence[APIRouter]
    consumers: Sequence[ConsumerSpec] = ()
    loops: Sequence[BackgroundLoop] = ()
    produces: Sequence[str] = ()
    version: str = "0.1.0"
    openapi_tags: list[dict[str, Any]] | None = None
    on_startup: Callable[[ServiceContext], Awaitable[None]] | None = None


def create_service_app(defn: ServiceDefinition, settings: ServiceSettings) -> FastAPI:
    metrics = Metrics(defn.name)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.effective_database_url)
        tracing.instrument_engine(engine)
        ctx = ServiceContext(
            settings=settings, engine=engine, session_factory=create_sessionmaker(engine),
            infra=defn.infra, outbox=Outbox(defn.infra.outbox), metrics=metrics,
        )
        app.state.ctx = ctx
        if defn.on_startup:
            await defn.on_startup(ctx)
        if settings.run_relay or settings.run_consumers:
            await _start_bus(defn, ctx)
        for loop in defn.loops:
            ctx.tasks.append(asyncio.create_task(_guard(loop, ctx), name=f"{defn.name}:{loop.__name__}"))
        log.info("%s started", defn.name)
        try:
            yield
        finally:
            await _stop(ctx)
            await engine.dispose()
            log.info("%s stopped", defn.name)

    app = FastAPI(
        title=defn.title, description=defn.description, version=defn.version, lifespan=lifespan,
        openapi_tags=defn.openapi_tags, docs_url=None, redoc_url=None,
    )
    tracing.setup_tracing(defn.name)
    tracing.instrument_app(app)
    app.state.keystore = KeyStore(settings.postsales_api_keys)
    app.state.metrics = metrics
    app.state.settings = settings
    install_error_handlers(app)

    async def on_replay(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, IdempotentReplay)
        return replay_response(exc)

    app.add_exception_handler(IdempotentReplay, on_replay)
    app.add_middleware(RequestContextMiddleware, metrics=metrics, max_body_bytes=settings.max_body_bytes)
    app.include_router(ops_router())
    install_offline_docs(app)
    consumed = [t for spec in defn.consumers for t in spec.topics]
    asyncapi_doc = asyncapi.build(title=f"{defn.title} events", produces=defn.produces, consumes=consumed)

    @app.get("/asyncapi.json", tags=["operations"], summary="AsyncAPI of this service's topics")
    async def asyncapi_json() -> dict[str, Any]:
        """AsyncAPI 3.0 document of the topics this service produces and consumes, from the event registry."""
        return asyncapi_doc

    for router in defn.routers:
        # Authenticate before anything else on the API, so no lookup runs for an anonymous caller.
        app.include_router(router, dependencies=[Depends(current_principal)], responses=PROBLEM_RESPONSES)
    return app


async def _start_bus(defn: ServiceDefinition, ctx: ServiceContext) -> None:
    s = ctx.settings
    topics = [s.topic(t) for t in TOPICS] + [s.topic(dlq_topic(t)) for t in TOPICS]
    try:
        await asyncio.wait_for(ensure_topics(s.kafka_bootstrap_servers, topics,
                                             partitions=s.kafka_topic_partitions), timeout=15)
    except Exception as exc:  # the broker may come later; producers/consumers retry on their own
        log.warning("could not ensure topics yet (%s: %s)", type(exc).__name__, exc)
    ctx.producer = make_producer(s.kafka_bootstrap_servers, client_id=f"{defn.name}-relay")
    ctx.relay = OutboxRelay(
        table=ctx.infra.outbox, session_factory=ctx.session_factory, producer=ctx.producer,
        topic_prefix=s.kafka_topic_prefix, poll_interval=s.outbox_poll_interval, metrics=ctx.metrics,
        retention=dt.timedelta(hours=s.outbox_retention_hours),
    )
    if s.run_relay:
        ctx.tasks.append(asyncio.create_task(ctx.relay.run(), name=f"{defn.name}:relay"))
    else:
        # The producer is still needed for dead-lettering and readiness.
        await ctx.producer.start()
        ctx.relay.started.set()
    for spec in (defn.consumers if s.run_consumers else ()):
        consumer = EventConsumer(
            name=spec.name, topics=spec.topics, bootstrap=s.kafka_bootstrap_servers,
            session_factory=ctx.session_factory, infra=ctx.infra, handler=spec.handler,
            batch_handler=spec.batch_handler, topic_prefix=s.kafka_topic_prefix, dlq_producer=ctx.producer,
            max_retries=s.consumer_max_retries, retry_backoff=s.consumer_retry_backoff,
            batch_size=spec.batch_size or s.consumer_batch_size, metrics=ctx.metrics,
            after_commit=ctx.relay.notify, dedup=spec.dedup, decode=spec.decode,
        )
        ctx.consumers.append(consumer)
        ctx.tasks.append(asyncio.create_task(consumer.run(), name=f"{defn.name}:{spec.name}"))


async def _guard(loop: BackgroundLoop, ctx: ServiceContext) -> None:
    """Run a background loop; log and restart it if it crashes, until the service stops."""
    while not ctx.stopping.is_set():
        try:
            await loop(ctx)
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background loop %s crashed; restarting", loop.__name__)
            await asyncio.sleep(1)


async def _stop(ctx: ServiceContext) -> None:
    ctx.stopping.set()
    for c in ctx.consumers:
        c.stop()
    if ctx.relay:
        ctx.relay.stop()
    if ctx.tasks:
        _, pending = await asyncio.wait(ctx.tasks, timeout=10)
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    if ctx.producer is not None:
        with contextlib.suppress(Exception):
            await ctx.producer.stop()


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


def get_ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session: commits when the endpoint succeeds, rolls back when it raises."""
    ctx = get_ctx(request)
    async with ctx.session_factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
        if session.info.get("outbox_dirty") and ctx.relay is not None:
            ctx.relay.notify()


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
ContextDep = Annotated[ServiceContext, Depends(get_ctx)]


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


async def _broker_check(ctx: ServiceContext) -> str:
    producer = ctx.producer
    if producer is None or ctx.relay is None or not ctx.relay.started.is_set():
        return "down: not connected"
    try:
        await asyncio.wait_for(producer.client.fetch_all_metadata(), timeout=3)
        return "ok"
    except Exception as exc:
        return f"down: {type(exc).__name__}"
