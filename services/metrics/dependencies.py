"""Scopes of the metrics API and shared query parameters."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import Depends, Path, Query

from shared.auth import Principal, require
from shared.db import utcnow
from shared.errors import Unprocessable
from shared.types import Date

ReadScope = Annotated[Principal, Depends(require("metrics:read"))]
IngestScope = Annotated[Principal, Depends(require("events:write"))]
AdminScope = Annotated[Principal, Depends(require("admin"))]

AccountId = Annotated[str, Path(min_length=1, max_length=200, description="The account id (event `subject`).")]
FromDate = Annotated[Date | None, Query(alias="from", description="First UTC day (inclusive).")]
ToDate = Annotated[Date | None, Query(alias="to", description="Last UTC day (inclusive); default today.")]

MAX_DAYS = 3660


def period(start: dt.date | None, end: dt.date | None, *, default_days: int) -> tuple[dt.date, dt.date]:
    """Resolve an inclusive ``from``/``to`` pair; 422 when reversed or too long."""
    end = end or utcnow().date()
    start = start or end - dt.timedelta(days=default_days - 1)
    if start > end:
        raise Unprocessable("'from' must not be after 'to'", errors=[{"loc": ["query", "from"],
                                                                       "msg": "after 'to'"}])
    if (end - start).days > MAX_DAYS:
        raise Unprocessable("the period may span at most 10 years",
                            errors=[{"loc": ["query", "from"], "msg": "period too long"}])
    return start, end
