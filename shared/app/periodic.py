"""Work a service does every N seconds (scans, scorers, purges), run and supervised by the runtime.

A service lists ``Periodic(...)`` entries in its :class:`~shared.app.context.ServiceDefinition`; the
runtime runs each in its own task until the service stops. A pass that raises is logged and counted,
and the next pass comes after the interval: a loop never dies of one bad pass. Each pass is counted
in ``background_loop_passes_total{loop, outcome}``, and the time of the last good one is in
``background_loop_last_success_timestamp_seconds{loop}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from shared.app.context import ServiceContext
from shared.settings import ServiceSettings

log = logging.getLogger("postsales.loops")

PassFn = Callable[[ServiceContext[Any, Any]], Awaitable[object]]


@dataclass(frozen=True)
class Periodic:
    """``Periodic("overdue-scan", every="overdue_check_interval", run=scan)``.

    ``every`` is seconds, or the name of the settings attribute holding them; ``enabled`` is a bool,
    or the name of a boolean setting. With ``again_if_busy``, a pass that returns a truthy value
    (it found work, so more may be waiting) is followed at once by the next one.
    """

    name: str
    run: PassFn
    every: float | str
    enabled: bool | str = True
    again_if_busy: bool = False

    def check(self, settings: ServiceSettings) -> None:
        """Refuse, at app creation, a loop whose settings do not exist or make no sense."""
        for attr in (self.every, self.enabled):
            if isinstance(attr, str) and not hasattr(settings, attr):
                raise ValueError(f"loop {self.name!r}: {type(settings).__name__} has no setting {attr!r}")
        if not self.interval(settings) > 0:
            raise ValueError(f"loop {self.name!r}: the interval must be positive")

    def interval(self, settings: ServiceSettings) -> float:
        value = getattr(settings, self.every) if isinstance(self.every, str) else self.every
        return float(value)

    def is_enabled(self, settings: ServiceSettings) -> bool:
        return bool(getattr(settings, self.enabled)) if isinstance(self.enabled, str) else self.enabled

    async def run_once(self, ctx: ServiceContext[Any, Any]) -> object:
        """One pass, counted; an exception is logged and counted, then returned as ``None``."""
        passes = ctx.metrics.loop_passes
        try:
            result = await self.run(ctx)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: pass failed; retrying next interval", self.name)
            passes.labels(loop=self.name, outcome="failed").inc()
            return None
        passes.labels(loop=self.name, outcome="ok").inc()
        ctx.metrics.loop_last_success.labels(loop=self.name).set(time.time())
        return result

    async def loop(self, ctx: ServiceContext[Any, Any]) -> None:
        """Pass, wait ``every`` seconds (or until the service stops), repeat."""
        interval = self.interval(ctx.settings)
        while not ctx.stopping.is_set():
            result = await self.run_once(ctx)
            if result and self.again_if_busy:
                await asyncio.sleep(0)  # let others run between back-to-back passes
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ctx.stopping.wait(), timeout=interval)
