"""OpenTelemetry tracing: FastAPI, httpx and SQLAlchemy are instrumented; for Kafka the trace context
travels inside every CloudEvent as the ``traceparent`` extension (W3C Trace Context), so it survives
the outbox, retries and DLQ replays, and each consumer continues it in a CONSUMER span.

Spans are always created (so logs carry ``trace_id``); they are exported over OTLP/HTTP only when
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager

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


def current_traceparent() -> dict[str, str]:
    """The current trace context as CloudEvents extension attributes (empty outside a trace)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return {k: v for k, v in carrier.items() if k in ("traceparent", "tracestate")}


def serialize(event: CloudEvent, trace_context: dict[str, str]) -> bytes:
    """The event's JSON bytes, carrying ``trace_context`` unless the event already has a traceparent."""
    if not trace_context or "traceparent" in (event.model_extra or {}):
        return event.to_bytes()
    doc = event.model_dump(mode="json", exclude_none=True)
    doc.update(trace_context)
    return json.dumps(doc, separators=(",", ":")).encode()


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
