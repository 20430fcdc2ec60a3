"""KPIs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.metrics.dependencies import FromDate, ReadScope, ToDate, period
from services.metrics.kpis import service
from services.metrics.kpis.schemas import KpisOut
from shared.app import SessionDep
from shared.errors import problems

router = APIRouter(prefix="/v1", tags=["kpis"])


@router.get("/kpis", response_model=KpisOut, responses=problems())
async def get_kpis(session: SessionDep, _: ReadScope, from_date: FromDate = None, to_date: ToDate = None,
                   segment: Annotated[str | None, Query(max_length=100)] = None,
                   owner: Annotated[str | None, Query(max_length=320)] = None) -> KpisOut:
    """Every KPI of the period (default: the last 90 days) with its numerator and denominator."""
    start, end = period(from_date, to_date, default_days=90)
    return await service.compute(session, start, end, segment, owner)
