"""Input types that refuse what pydantic's lax mode would quietly coerce.

Lax mode turns ``0`` into ``1970-01-01``, ``1`` into ``true`` and ``"5"`` into ``5``: a client bug
then becomes stored data. Use these in request models and query parameters instead of the bare types;
the OpenAPI schema is unchanged.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from pydantic import AwareDatetime, BeforeValidator, StrictBool, StrictInt

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _date_only(value: Any) -> Any:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and _DATE.fullmatch(value):
        return value
    raise ValueError("must be a date as YYYY-MM-DD")


def _datetime_only(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and _DATETIME.match(value):
        return value
    raise ValueError("must be an RFC 3339 date-time with an offset, e.g. 2026-11-23T09:30:00Z")


def _number_only(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    return value


Date = Annotated[dt.date, BeforeValidator(_date_only)]
"""A calendar date given as ``YYYY-MM-DD`` (never a number)."""

DateTime = Annotated[AwareDatetime, BeforeValidator(_datetime_only)]
"""An RFC 3339 timestamp with an offset (never a number, never naive)."""

Number = Annotated[float, BeforeValidator(_number_only)]
"""A JSON number (not a boolean, not a numeric string)."""

Bool = StrictBool
"""``true`` / ``false`` only (JSON bodies; query strings parse ``true``/``false`` before this)."""

Int = StrictInt
"""An integer in a JSON body (not a numeric string, not a float)."""

__all__ = ["Bool", "Date", "DateTime", "Int", "Number"]
