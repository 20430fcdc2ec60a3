"""HTTP API of deliveries."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from sqlalchemy import select

from services.notifier.deliveries.schemas import AttemptOut, DeliveryOut
from services.notifier.deliveries.service import attempts_of
from services.notifier.dependencies import ReadScope
from services.notifier.models import Delivery, DeliveryAttempt
from shared.app import SessionDep
from shared.errors import NotFound, problems
from shared.http import Cursor, Limit, Page, keyset_page

router = APIRouter(prefix="/v1/deliveries", tags=["deliveries"])


def _out(d: Delivery, attempts: list[DeliveryAttempt]) -> DeliveryOut:
    return DeliveryOut(
        id=d.id, alert_id=d.alert_id, channel_id=d.channel_id, channel_kind=d.channel_kind,
        reason=d.reason, status=d.status,
        attempts=d.attempts, next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
        last_error=d.last_error, delivered_at=d.delivered_at, created_at=d.created_at,
        attempt_log=[AttemptOut.model_validate(a) for a in attempts],
    )


@router.get("", response_model=Page[DeliveryOut])
async def list_deliveries(
    session: SessionDep, _: ReadScope,
    alert_id: Annotated[str | None, Query(max_length=36)] = None,
    channel_id: Annotated[str | None, Query(max_length=36)] = None,
    status: Literal["pending", "sending", "delivered", "dead"] | None = None,
    limit: Limit = 50, cursor: Cursor = None,
) -> Page[DeliveryOut]:
    """List deliveries, newest first, each with its attempt log."""
    stmt = select(Delivery)
    if alert_id:
        stmt = stmt.where(Delivery.alert_id == alert_id)
    if channel_id:
        stmt = stmt.where(Delivery.channel_id == channel_id)
    if status:
        stmt = stmt.where(Delivery.status == status)
    rows, nxt = await keyset_page(session, stmt, order_by=[Delivery.created_at, Delivery.id],
                                  cursor=cursor, limit=limit)
    logs = await attempts_of(session, [d.id for d in rows])
    return Page[DeliveryOut](items=[_out(d, logs[d.id]) for d in rows], next_cursor=nxt)


@router.get("/{delivery_id}", response_model=DeliveryOut, responses=problems(404))
async def get_delivery(session: SessionDep, _: ReadScope,
                       delivery_id: Annotated[str, Path(max_length=36)]) -> DeliveryOut:
    """Read one delivery and its attempts."""
    d = await session.get(Delivery, delivery_id)
    if d is None:
        raise NotFound(f"delivery {delivery_id} does not exist")
    return _out(d, (await attempts_of(session, [d.id]))[d.id])
