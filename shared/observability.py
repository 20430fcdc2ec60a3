"""Logs, metrics and request ids.

Logs are JSON lines carrying ``request_id`` and ``event_id`` when there is one. Metrics live in a
registry per app (so several apps can live in one process, as in the tests) and are served
at ``/metrics`` in the Prometheus text format.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import time
import uuid

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from pythonjsonlogger.json import JsonFormatter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_event_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("event_id", default=None)


def current_request_id() -> str | None:
    return _request_id.get()


def set_event_id(event_id: str | None) -> contextvars.Token[str | None]:
    return _event_id.set(event_id)


def reset_event_id(token: contextvars.Token[str | None]) -> None:
    _event_id.reset(token)


class _ContextFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        if (rid := _request_id.get()) is not None:
            record.request_id = rid
        if (eid := _event_id.get()) is not None:
            record.event_id = eid
        from shared.tracing import current_trace_id

        if (tid := current_trace_id()) is not None:
            record.trace_id = tid
        return True


def configure_logging(service: str, level: str = "INFO") -> None:
    """JSON logs on stderr for the whole process."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
    ))
    handler.addFilter(_ContextFilter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "kafka"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


class Metrics:
    """The Prometheus metrics of one service app."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter("http_requests_total", "HTTP requests", ["method", "route", "status"], registry=r)
        self.http_latency = Histogram("http_request_duration_seconds", "HTTP latency", ["method", "route"],
                                      registry=r)
        self.events_consumed = Counter("events_consumed_total", "Events handled by consumers",
                                       ["consumer", "outcome"], registry=r)
        self.handler_latency = Histogram("event_handler_duration_seconds", "Time to handle one consumer batch",
                                         ["consumer"], registry=r)
        self.consumer_lag = Gauge("consumer_lag", "Messages behind the high watermark",
                                  ["consumer", "topic", "partition"], registry=r)
        self.consumer_restarts = Counter("consumer_restarts_total",
                                         "Consumers that crashed and rejoined their group", ["consumer"], registry=r)
        self.dlq_publish_failures = Counter("dlq_publish_failures_total",
                                            "Failed attempts to publish to a dead-letter topic (the message is "
                                            "held back and read again)", ["consumer", "topic"], registry=r)
        self.consumer_stuck_partitions = Gauge("consumer_stuck_partitions",
                                               "Partitions with lag and no progress for the stuck threshold",
                                               ["consumer"], registry=r)
        self.consumer_seconds_since_progress = Gauge(
            "consumer_seconds_since_progress", "Seconds a partition with lag has gone without progress (0 when "
            "caught up)", ["consumer", "topic", "partition"], registry=r)
        self.dlq_messages = Counter("dlq_messages_total", "Messages sent to a dead-letter topic",
                                    ["consumer", "topic"], registry=r)
        self.outbox_backlog = Gauge("outbox_backlog", "Outbox events not yet published", registry=r)
        self.outbox_published = Counter("outbox_published_total", "Outbox events published", registry=r)
        self.loop_passes = Counter("background_loop_passes_total", "Passes of a periodic background loop",
                                   ["loop", "outcome"], registry=r)
        self.loop_last_success = Gauge("background_loop_last_success_timestamp_seconds",
                                       "Unix time of a periodic loop's last successful pass", ["loop"], registry=r)
        self.retention_purged = Counter("retention_purged_rows_total", "Rows deleted by retention",
                                        ["table"], registry=r)
        self.service_info = Gauge("service_info", "Service identity", ["service"], registry=r)
        self.service_info.labels(service=service).set(1)


class RequestContextMiddleware:
    """Assigns a request id (or keeps a sane incoming ``X-Request-ID``), echoes it, times the request,
    and refuses bodies over ``max_body_bytes`` with 413."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.log = logging.getLogger("postsales.http")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = incoming if 0 < len(incoming) <= 100 and incoming.isprintable() else uuid.uuid4().hex
        token = _request_id.set(rid)
        start = time.perf_counter()
        status = {"code": 500}

        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._problem(scope, send, rid, 413, f"request body exceeds {self.max_body_bytes} bytes")
            _request_id.reset(token)
            return
        # NUL cannot be stored in PostgreSQL text (SQLite would take it): refuse it at the door, for every
        # backend alike, rather than fail deep inside a transaction or a consumer.
        if "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b""):
            await self._problem(scope, send, rid, 422, "the URL contains a NUL character")
            _request_id.reset(token)
            return

        received = 0
        tail = b""

        async def limited_receive() -> Message:
            nonlocal received, tail
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > self.max_body_bytes:
                    raise _BodyTooLarge
                window = tail + chunk
                if b"\\u0000" in window and _JSON_NUL.search(window):
                    raise _NulInBody
                tail = window[-16:]
            return message

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, limited_receive, send_wrapper)
        except _BodyTooLarge:
            await self._problem(scope, send, rid, 413, f"request body exceeds {self.max_body_bytes} bytes")
            status["code"] = 413
        except _NulInBody:
            await self._problem(scope, send, rid, 422, "the request body contains a NUL character (\\u0000)")
            status["code"] = 422
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self.metrics.http_requests.labels(scope["method"], path, str(status["code"])).inc()
            self.metrics.http_latency.labels(scope["method"], path).observe(time.perf_counter() - start)
            if status["code"] >= 500:
                self.log.error("%s %s -> %s", scope["method"], scope["path"], status["code"])
            _request_id.reset(token)

    async def _problem(self, scope: Scope, send: Send, rid: str, status: int, detail: str) -> None:
        import json

        from shared.errors import PROBLEM_CONTENT_TYPE, PayloadTooLarge, Unprocessable

        error = PayloadTooLarge(detail) if status == 413 else Unprocessable(detail)
        body = json.dumps(error.to_problem(scope["path"])).encode()
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", PROBLEM_CONTENT_TYPE.encode()), (b"content-length", str(len(body)).encode()),
            (b"x-request-id", rid.encode())]})
        await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(BaseException):
    pass


class _NulInBody(BaseException):  # like _BodyTooLarge, escapes FastAPI's body parsing
    pass


# A JSON \u0000 escape whose backslash is not itself escaped (an even run of backslashes before it).
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
