"""What the running lifecycle service holds besides the common context: its clock."""

from __future__ import annotations

from dataclasses import dataclass

from services.lifecycle.clock import Clock
from services.lifecycle.settings import Settings
from shared.app import ServiceContext


@dataclass
class Lifecycle:
    clock: Clock


LifecycleContext = ServiceContext[Settings, Lifecycle]


async def startup(ctx: ServiceContext[Settings]) -> Lifecycle:
    """Builds ``ctx.extension``."""
    return Lifecycle(clock=Clock(frozen_at=ctx.settings.clock_now))
