"""The service's clock. Business times (completions, transitions, the scheduler's "today") come from
here so that tests and demos can drive dates: ``ctx.state["clock"]`` (a callable returning an aware
datetime) wins, then the ``clock_now`` setting, then the real time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import cast

from shared.app import ServiceContext
from shared.db import utcnow

CLOCK_KEY = "clock"


def now(ctx: ServiceContext) -> dt.datetime:
    clock = ctx.state.get(CLOCK_KEY)
    if clock is not None:
        return cast(Callable[[], dt.datetime], clock)().astimezone(dt.UTC)
    fixed: dt.datetime | None = getattr(ctx.settings, "clock_now", None)
    return fixed.astimezone(dt.UTC) if fixed is not None else utcnow()


def today(ctx: ServiceContext) -> dt.date:
    """The current UTC date."""
    return now(ctx).date()
