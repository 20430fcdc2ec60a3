"""HTTP API of deliveries."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from services.notifier.deliveries import service
from services.notifier.deliveries.schemas import DeliveryOut
from services.notifier.dependencies import ReadScope
from shared.app import SessionDep
from shared.errors import problems
from shared.http import Cursor, Limit, Page

router = APIRouter(prefix="/v1/deliveries", tags=["deliveries"])


@router.get("", response_model=Page[DeliveryOut])
async def list_deliveries(
    session: SessionDep, _: ReadScope,
    alert_id: Annotated[str | None, Query(max_length=36)] = None,
    channel_id: Annotated[str | None, Query(max_length=36)] = None,
    status: Literal["pending", "sending", "delivered", "dead"] | None = None,
    limit: Limit = 50, cursor: Cursor = None,
) -> Page[DeliveryOut]:
    """List deliveries, newest first, each with its attempt log."""
    return await service.list_page(session, alert_id=alert_id, channel_id=channel_id, status=status,
                                   cursor=cursor, limit=limit)


@router.get("/{delivery_id}", response_model=DeliveryOut, responses=problems(404))
async def get_delivery(session: SessionDep, _: ReadScope,
                       delivery_id: Annotated[str, Path(max_length=36)]) -> DeliveryOut:
    """Read one delivery and its attempts."""
    return await service.get(session, delivery_id)
