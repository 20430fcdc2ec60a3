"""The service's clock. Business times (completions, transitions, the scheduler's "today") come from
here so that tests and demos can drive dates: a frozen instant (the ``clock_now`` setting, or
``ctx.extension.clock.frozen_at`` set by a test) wins over the real time."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.db import utcnow

if TYPE_CHECKING:
    from services.lifecycle.context import LifecycleContext


@dataclass
class Clock:
    frozen_at: dt.datetime | None = None

    def now(self) -> dt.datetime:
        return self.frozen_at.astimezone(dt.UTC) if self.frozen_at is not None else utcnow()


def now(ctx: LifecycleContext) -> dt.datetime:
    return ctx.extension.clock.now()


def today(ctx: LifecycleContext) -> dt.date:
    """The current UTC date."""
    return now(ctx).date()
