"""HTTP helpers every service uses: cursor pagination and ``Idempotency-Key`` on creating POSTs."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Header, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, Select, Table, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from shared.auth import Principal
from shared.db import utcnow
from shared.errors import Conflict, Unprocessable

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """A page of a list; pass ``next_cursor`` back as ``cursor`` for the next one (null at the end)."""

    items: list[T]
    next_cursor: str | None = Field(default=None, examples=[None])


Limit = Annotated[int, Query(ge=1, le=500, description="Page size (max 500).")]
Cursor = Annotated[str | None, Query(max_length=500, description="Opaque cursor from `next_cursor`.")]


def _default(o: Any) -> Any:
    if isinstance(o, dt.datetime | dt.date):
        return {"$t": o.isoformat(), "$k": "dt" if isinstance(o, dt.datetime) else "d"}
    if isinstance(o, Decimal):
        return {"$t": str(o), "$k": "dec"}
    if isinstance(o, uuid.UUID):
        return {"$t": str(o), "$k": "uuid"}
    raise TypeError(type(o).__name__)


def _hook(d: dict[str, Any]) -> Any:
    if set(d) == {"$t", "$k"}:
        kind, text = d["$k"], d["$t"]
        parsers: dict[str, Callable[[str], Any]] = {
            "dt": dt.datetime.fromisoformat, "d": dt.date.fromisoformat, "dec": Decimal, "uuid": uuid.UUID}
        return parsers[kind](text)
    return d


def encode_cursor(values: Sequence[Any]) -> str:
    raw = json.dumps(list(values), default=_default, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw, object_hook=_hook)
    except (ValueError, KeyError, TypeError):
        raise Unprocessable("invalid cursor", errors=[{"loc": ["query", "cursor"], "msg": "invalid cursor"}]) \
            from None
    if not isinstance(values, list) or len(values) != arity:
        raise Unprocessable("invalid cursor", errors=[{"loc": ["query", "cursor"], "msg": "invalid cursor"}])
    return values


async def keyset_page(
    session: AsyncSession, stmt: Select[Any], *, order_by: Sequence[ColumnElement[Any] | QueryableAttribute[Any]],
    cursor: str | None, limit: int, descending: bool = True,
) -> tuple[list[Any], str | None]:
    """Run ``stmt`` one page at a time, ordered by ``order_by`` (last column unique), via keyset."""
    if cursor:
        values = decode_cursor(cursor, len(order_by))
        key = tuple_(*order_by)
        stmt = stmt.where(key < tuple_(*values) if descending else key > tuple_(*values))
    stmt = stmt.order_by(*[c.desc() if descending else c.asc() for c in order_by]).limit(limit + 1)
    rows = list((await session.execute(stmt)).scalars().all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor([getattr(last, str(c.key)) for c in order_by])
    return rows, next_cursor


class IdempotentReplay(Exception):
    """Raised by :class:`Idempotency` to answer a retried request with the stored response."""

    def __init__(self, status_code: int, body: bytes) -> None:
        super().__init__("idempotent replay")
        self.status_code = status_code
        self.body = body


class Idempotency:
    """``Idempotency-Key`` support for one creating POST.

    Resolve it as a dependency (``IdempotencyDep``); if the key was seen with the same body the
    stored response is returned at once; with another body it is 422. Call :meth:`save` with the
    response in the same session, so the result and the key commit together.
    """

    def __init__(self, key: str | None, scope: str, request_hash: str, table: Table) -> None:
        self.key = key
        self.scope = scope
        self.request_hash = request_hash
        self.table = table

    async def check(self, session: AsyncSession) -> None:
        if self.key is None:
            return
        t = self.table
        row = (await session.execute(
            select(t.c.request_hash, t.c.status_code, t.c.response_body)
            .where(t.c.key == self.key, t.c.scope == self.scope)
        )).first()
        if row is None:
            return
        if row.request_hash != self.request_hash:
            raise Unprocessable(
                "this Idempotency-Key was already used with a different request body",
                errors=[{"loc": ["header", "Idempotency-Key"], "msg": "reused with a different body"}],
            )
        raise IdempotentReplay(row.status_code, row.response_body)

    async def save(self, session: AsyncSession, status_code: int, body: Any) -> None:
        if self.key is None:
            return
        payload = json.dumps(jsonable_encoder(body), separators=(",", ":")).encode()
        try:
            async with session.begin_nested():
                await session.execute(self.table.insert().values(
                    key=self.key, scope=self.scope, request_hash=self.request_hash,
                    status_code=status_code, response_body=payload, created_at=utcnow(),
                ))
        except IntegrityError:
            raise Conflict("a request with this Idempotency-Key is already in progress") from None


def idempotency_dependency(table: Table) -> Any:
    """Build the ``Idempotency`` dependency for a service's idempotency table."""

    async def dependency(
        request: Request,
        idempotency_key: Annotated[str | None, Header(max_length=255, description=(
            "Retry-safe key: the same key and body returns the first response."))] = None,
    ) -> Idempotency:
        body = await request.body()
        principal: Principal | None = getattr(request.state, "principal", None)
        scope = f"{principal.key_id if principal else '-'}:{request.method}:{request.url.path}"
        digest = hashlib.sha256(_canonical(body)).hexdigest()
        return Idempotency(idempotency_key, scope, digest, table)

    return Depends(dependency)


def _canonical(body: bytes) -> bytes:
    try:
        return json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        return body


def replay_response(exc: IdempotentReplay) -> JSONResponse:
    return JSONResponse(json.loads(exc.body), status_code=exc.status_code,
                        headers={"Idempotent-Replayed": "true"})
