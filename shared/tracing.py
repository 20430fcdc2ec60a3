"""OpenTelemetry tracing: FastAPI, httpx and SQLAlchemy are instrumented; for Kafka the trace context
travels inside every CloudEvent as the ``traceparent`` extension (W3C Trace Context), so it survives
the outbox, retries and DLQ replays, and each consumer continues it in a CONSUMER span.

Spans are always created (so logs carry ``trace_id``); they are exported over OTLP/HTTP only when
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI
from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.events.envelope import CloudEvent

_configured = False
tracer = trace.get_tracer("postsales")


def setup_tracing(service: str) -> None:
    """Install the process-wide tracer provider once (several apps may share a test process)."""
    global _configured
    if _configured:
        return
    _configured = True
    provider = TracerProvider(resource=Resource.create({"service.name": f"postsales-{service}"}))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor().instrument()


def instrument_app(app: FastAPI) -> None:
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz,metrics")


def instrument_engine(engine: AsyncEngine) -> None:
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    # The instrumentation declares SQLAlchemy < 2.1 but only hooks engine events, which 2.1 keeps.
    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, enable_commenter=False, skip_dep_check=True)


def with_trace_context(event: CloudEvent) -> CloudEvent:
    """The event with the current trace context as its ``traceparent`` extension (kept if already set)."""
    extras = event.model_extra or {}
    if "traceparent" in extras:
        return event
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    if "traceparent" not in carrier:
        return event
    doc: dict[str, Any] = event.model_dump()
    doc["traceparent"] = carrier["traceparent"]
    if "tracestate" in carrier:
        doc["tracestate"] = carrier["tracestate"]
    return CloudEvent.model_validate(doc)


@contextmanager
def consuming(event: CloudEvent, consumer: str) -> Iterator[trace.Span]:
    """A consumer span that continues the producer's trace from the event's ``traceparent``."""
    extras = event.model_extra or {}
    carrier = {k: str(extras[k]) for k in ("traceparent", "tracestate") if k in extras}
    parent = propagate.extract(carrier) if carrier else context.get_current()
    with tracer.start_as_current_span(
        f"{consumer} process {event.type}", context=parent, kind=trace.SpanKind.CONSUMER,
        attributes={"messaging.system": "kafka", "messaging.consumer.group.name": consumer,
                    "cloudevents.event_id": event.id, "cloudevents.event_type": event.type,
                    "cloudevents.event_subject": event.subject},
    ) as span:
        yield span


def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None
