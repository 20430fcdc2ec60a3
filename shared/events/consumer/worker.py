"""Decoding and planning batches in a worker process, beside the event loop.

A Python process runs one thread of Python at a time. A consumer that decodes and plans ~10k events a
batch while the batch before it is in the database therefore takes turns with its own database
thread: the event loop's decoding, aiokafka's parsing and the driver's statements share one core
while the second one idles. A :class:`~shared.events.consumer.base.RemotePlanner` can have the
decoding and planning done in a worker process instead: the consumer sends the raw messages (bytes)
and gets back ``plan.export()``, which holds what the transaction needs (a few objects per event,
not the events), and ``adopt`` turns that into the plan it writes.

One worker per consumer, started by the first batch of at least ``min_batch`` messages (a quiet
consumer never needs one) and spawned, not forked: the event loop's process has threads, which a fork
would copy mid-flight. It is up a second or two later, once it has imported the service's code. Only
batches of at least ``min_batch`` messages go to it: for smaller ones the round trip would cost more
than it saves. Until the worker is up, and whenever it fails (a planner error, a killed process),
batches are decoded and planned in the consumer as before; a dead worker is started again by the next
large batch, and one that could not start is tried again ``retry_after`` seconds later.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from shared.events.consumer.base import Decoder, ExportablePlan, rejection

log = logging.getLogger("postsales.consumer")

# Per logical topic, the raw message values of a batch, in order: what the worker gets.
Parts = Sequence[tuple[str, Sequence[bytes | None]]]
# (part, index within the part, reason) of each message that can never be handled.
Rejected = list[tuple[int, int, str]]


def plan_parts(decode: Decoder, new_plan: Callable[[], ExportablePlan], parts: Parts) -> tuple[Any, Rejected]:
    """Decode and plan a batch (in the worker): the plan's export and the messages to dead-letter."""
    plan = new_plan()
    rejected: Rejected = []
    events: list[Any] = []
    append = events.append
    for p, (topic, values) in enumerate(parts):
        for i, raw in enumerate(values):
            try:
                append(decode(raw, topic))
            except Exception as exc:
                rejected.append((p, i, rejection(exc)))
    plan.add(events)
    plan.complete()
    return plan.export(), rejected


def _ready(decode: Decoder, new_plan: Callable[[], ExportablePlan]) -> int:
    """The worker's pid, once it has imported what planning needs (unpickling ``decode`` and ``new_plan``
    imports their modules): the first batch then does not wait for the service's code to load."""
    new_plan()
    return os.getpid()


def _follow(parent: int) -> None:
    """Run in the worker at start: exit when the consumer's process is gone (a SIGKILL leaves no one to
    stop the pool, and the worker's own ends of its queues keep it waiting forever)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="follow-parent", daemon=True).start()


class PlanningWorker:
    """The worker process of one consumer, and the calls to it."""

    def __init__(self, consumer: str, decode: Decoder, new_plan: Callable[[], ExportablePlan], *,
                 min_batch: int = 1000, retry_after: float = 30.0) -> None:
        self.consumer = consumer
        self.decode = decode
        self.new_plan = new_plan
        self.min_batch = min_batch
        self.retry_after = retry_after
        self.pid: int | None = None  # set once the worker answered
        self.planned = 0  # batches planned by the worker
        self.starts = 0  # worker processes started
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        # When the last start failed (monotonic), set by the pool's thread; None: no failed start pending.
        self._failed_at: float | None = None

    def wants(self, size: int) -> bool:
        """Whether a batch of ``size`` messages goes to the worker: it is large enough and the worker is
        up (if it is not started yet, or died, it is started here and the batch planned in the consumer;
        if it could not start, it is started again once ``retry_after`` has passed)."""
        if size < self.min_batch:
            return False
        if self._failed_at is not None and self._pool is not None:
            if time.monotonic() - self._failed_at < self.retry_after:
                return False
            self._discard(self._pool)
        if self._pool is None:
            self.start()
            return False
        return self.pid is not None

    def start(self) -> None:
        """Start the worker process (without waiting for it)."""
        if self._pool is not None:
            return
        self._failed_at = None
        self.starts += 1
        pool = self._pool = concurrent.futures.ProcessPoolExecutor(
            1, mp_context=multiprocessing.get_context("spawn"), initializer=_follow, initargs=(os.getpid(),))
        started = pool.submit(_ready, self.decode, self.new_plan)

        def up(future: concurrent.futures.Future[int]) -> None:
            if self._pool is not pool or future.cancelled():
                return
            if (exc := future.exception()) is not None:
                log.warning("consumer %s: the worker process did not start (%s); planning in the consumer, "
                            "trying again in %g s", self.consumer, exc, self.retry_after)
                # Discarded by the event loop's thread (``wants``): this runs on the pool's own thread.
                self._failed_at = time.monotonic()
                return
            self.pid = future.result()
            log.info("consumer %s: planning large batches in worker process %d", self.consumer, self.pid)

        started.add_done_callback(up)

    async def plan(self, parts: Parts) -> tuple[Any, Rejected]:
        """The export of the batch's plan and its rejected messages; raises if the worker failed (it is
        then started again on the next large batch)."""
        pool = self._pool
        assert pool is not None
        try:
            out = await asyncio.get_running_loop().run_in_executor(pool, plan_parts, self.decode, self.new_plan, parts)
        except concurrent.futures.process.BrokenProcessPool:
            self._discard(pool)
            raise
        self.planned += 1
        return out

    def _discard(self, pool: concurrent.futures.ProcessPoolExecutor) -> None:
        if self._pool is pool:
            self._pool, self.pid = None, None
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        if self._pool is not None:
            self._discard(self._pool)
