"""One error hierarchy for the suite, rendered as RFC 9457 ``application/problem+json``.

Services raise the domain errors below; the handlers installed by :func:`install_error_handlers`
turn them (and FastAPI's validation errors, 404s, 405s and anything unexpected) into problems.
No stack trace ever reaches a client.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("postsales.errors")

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_BASE = "https://postsales.dev/problems/"


class ProblemItem(BaseModel):
    loc: list[str | int]
    msg: str


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=[PROBLEM_BASE + "not-found"])
    title: str = Field(examples=["Not found"])
    status: int = Field(examples=[404])
    detail: str | None = Field(default=None, examples=["handoff 7d5c… does not exist"])
    instance: str | None = None
    errors: list[ProblemItem] | None = None


class PostsalesError(Exception):
    """Base of every error the suite raises on purpose; carries its HTTP status and problem type."""

    status_code = 500
    title = "Internal server error"
    slug = "internal"

    def __init__(self, detail: str | None = None, *, errors: Sequence[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.errors = list(errors) if errors is not None else None
        self.headers = headers
        self.extra = extra

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.slug,
            "title": self.title,
            "status": self.status_code,
            "detail": self.detail or self.title,
        }
        if instance:
            body["instance"] = instance
        if self.errors is not None:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


class BadRequest(PostsalesError):
    status_code, title, slug = 400, "Bad request", "bad-request"


class Unauthorized(PostsalesError):
    status_code, title, slug = 401, "Unauthorized", "unauthorized"

    def __init__(self, detail: str | None = None, **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kw)


class Forbidden(PostsalesError):
    status_code, title, slug = 403, "Forbidden", "forbidden"


class NotFound(PostsalesError):
    status_code, title, slug = 404, "Not found", "not-found"


class MethodNotAllowed(PostsalesError):
    status_code, title, slug = 405, "Method not allowed", "method-not-allowed"


class NotAcceptable(PostsalesError):
    """None of the representations the client accepts (``Accept``) can be served."""

    status_code, title, slug = 406, "Not acceptable", "not-acceptable"


class Conflict(PostsalesError):
    status_code, title, slug = 409, "Conflict", "conflict"


class PayloadTooLarge(PostsalesError):
    status_code, title, slug = 413, "Payload too large", "payload-too-large"


class Unprocessable(PostsalesError):
    """The request is well-formed but its content is invalid (validation, business rules)."""

    status_code, title, slug = 422, "Unprocessable content", "validation"


class ServiceUnavailable(PostsalesError):
    status_code, title, slug = 503, "Service unavailable", "unavailable"


def problem_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_CONTENT_TYPE)


def _validation_items(exc: RequestValidationError) -> list[dict[str, Any]]:
    items = []
    for err in exc.errors():
        loc = [p for p in err.get("loc", ()) if isinstance(p, str | int)]
        items.append({"loc": loc, "msg": str(err.get("msg", "invalid"))})
    return items


def install_error_handlers(app: FastAPI) -> None:
    async def on_domain(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, PostsalesError)
        return problem_response(exc.status_code, exc.to_problem(request.url.path), exc.headers)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        items = _validation_items(exc)
        detail = "; ".join(f"{'.'.join(map(str, i['loc']))}: {i['msg']}" for i in items[:5])
        err = Unprocessable(detail or "invalid request", errors=items)
        return problem_response(422, err.to_problem(request.url.path))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        cls: type[PostsalesError] = {
            400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound,
            405: MethodNotAllowed, 409: Conflict, 413: PayloadTooLarge, 422: Unprocessable,
            503: ServiceUnavailable,
        }.get(exc.status_code, PostsalesError)
        detail = exc.detail if isinstance(exc.detail, str) else None
        if exc.status_code == 400 and detail == "There was an error parsing the body":
            # A body that is not valid JSON (or not UTF-8) is invalid input like any other: 422.
            err422 = Unprocessable("the request body is not valid JSON",
                                   errors=[{"loc": ["body"], "msg": "not valid JSON"}])
            return problem_response(422, err422.to_problem(request.url.path))
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route for {request.method} {request.url.path}"
        if exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}"
        err = cls(detail)
        body = err.to_problem(request.url.path)
        body["status"] = exc.status_code
        headers = dict(exc.headers or {}) | dict(err.headers or {})
        return problem_response(exc.status_code, body, headers or None)

    async def on_db_unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.error("database unavailable: %s", type(exc).__name__)
        err = ServiceUnavailable("a backing service (database) is unavailable; retry later",
                                 headers={"Retry-After": "5"})
        return problem_response(503, err.to_problem(request.url.path), err.headers)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return await on_db_unavailable(request, exc)
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(500, PostsalesError("an unexpected error occurred").to_problem(request.url.path))

    app.add_exception_handler(PostsalesError, on_domain)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(OperationalError, on_db_unavailable)
    app.add_exception_handler(OSError, on_db_unavailable)
    app.add_exception_handler(Exception, on_unexpected)


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {PROBLEM_CONTENT_TYPE: {}}, "description": desc}
    for code, desc in {
        401: "Missing or unknown bearer token",
        403: "Token lacks the required scope",
        422: "Invalid request",
    }.items()
}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the given problem status codes."""
    descriptions = {400: "Bad request", 404: "Not found", 406: "Not acceptable", 409: "Conflict",
                    413: "Payload too large", 503: "Service unavailable"}
    out = dict(PROBLEM_RESPONSES)
    for c in codes:
        out[c] = {"model": Problem, "content": {PROBLEM_CONTENT_TYPE: {}},
                  "description": descriptions.get(c, "Error")}
    return out
