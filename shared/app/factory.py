"""``create_service_app``: the FastAPI app of a service, from its definition and settings."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from shared import tracing
from shared.app.context import ServiceDefinition
from shared.app.ops import install_offline_docs, ops_router
from shared.app.periodic import Periodic
from shared.app.retention import RETENTION
from shared.app.runtime import lifespan_for
from shared.auth import KeyStore, current_principal
from shared.errors import PROBLEM_RESPONSES, install_error_handlers
from shared.events import asyncapi
from shared.http import IdempotentReplay, replay_response
from shared.observability import Metrics, RequestContextMiddleware
from shared.settings import ServiceSettings


def create_service_app(defn: ServiceDefinition, settings: ServiceSettings) -> FastAPI:
    """The app: lifespan, error handlers, request context, ops routes, docs, AsyncAPI, the service's routers.

    ``settings`` must already be the service's own settings class (``Settings.resolve(given)``).
    """
    _check_loops(defn, settings)
    metrics = Metrics(defn.name)
    app = FastAPI(
        title=defn.title, description=defn.description, version=defn.version,
        lifespan=lifespan_for(defn, settings, metrics), openapi_tags=defn.openapi_tags, docs_url=None,
        redoc_url=None,
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

    @app.get("/asyncapi.json", tags=["operations"], summary="AsyncAPI of this service's topics")
    async def asyncapi_json(request: Request) -> dict[str, Any]:
        """AsyncAPI 3.0 document of the topics this service produces and consumes, from the event registry."""
        ctx = getattr(request.app.state, "ctx", None)  # the specs are built by the lifespan
        consumed = [t for spec in (ctx.consumer_specs if ctx else []) for t in spec.topics]
        return asyncapi.build(title=f"{defn.title} events", produces=defn.produces, consumes=consumed)

    for router in defn.routers:
        # Authenticate before anything else on the API, so no lookup runs for an anonymous caller.
        app.include_router(router, dependencies=[Depends(current_principal)], responses=PROBLEM_RESPONSES)
    return app


def _check_loops(defn: ServiceDefinition, settings: ServiceSettings) -> None:
    names = [loop.name for loop in defn.loops if isinstance(loop, Periodic)] + [RETENTION.name]
    if len(names) != len(set(names)):
        raise ValueError(f"{defn.name}: periodic loop names must be unique, got {sorted(names)}")
    for loop in [*defn.loops, RETENTION]:
        if isinstance(loop, Periodic):
            loop.check(settings)
