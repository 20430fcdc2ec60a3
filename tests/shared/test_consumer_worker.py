"""The consumer's planning worker, a real spawned process: a worker that could not start is tried again."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shared.events.consumer.worker import PlanningWorker
from shared.testing import eventually

FAIL_ONCE = "POSTSALES_TEST_WORKER_FAIL_ONCE"  # a file path: the first worker to start creates it and fails


class CountingPlan:
    def __init__(self) -> None:
        self.events: list[str] = []

    def add(self, events: Sequence[Any]) -> None:
        self.events.extend(events)

    def complete(self) -> None:
        pass

    def export(self) -> Any:
        return (os.getpid(), len(self.events))


def flaky_plan() -> CountingPlan:
    """Fails in the first worker process that starts (as a failed import or an exhausted host would)."""
    flag = Path(os.environ[FAIL_ONCE])
    if not flag.exists():
        flag.touch()
        raise RuntimeError("this worker cannot start")
    return CountingPlan()


def text(raw: bytes | None, topic: str) -> str:
    return (raw or b"").decode()


async def test_a_worker_that_could_not_start_is_started_again_after_retry_after(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(FAIL_ONCE, str(tmp_path / "failed-once"))
    worker = PlanningWorker("test", text, flaky_plan, min_batch=2, retry_after=1.0)
    try:
        assert not worker.wants(1)  # too small: nothing starts
        assert worker.starts == 0
        assert not worker.wants(5)  # starts the worker; this batch is planned in the consumer
        assert worker.starts == 1
        await eventually(lambda: _exists(tmp_path / "failed-once"), timeout=60, message="the first start failed")
        await asyncio.sleep(0.3)
        # Failed, and not retried before retry_after: batches stay in the consumer.
        assert not worker.wants(5) and worker.pid is None and worker.starts == 1

        async def up() -> bool:
            worker.wants(5)  # what each large batch does: starts it again once retry_after has passed
            return worker.pid is not None

        await eventually(up, timeout=60, message="the worker started again")
        assert worker.starts == 2 and worker.pid != os.getpid()
        assert worker.wants(5)
        exported, rejected = await worker.plan([("usage", [b"a", b"b", b"c"])])
        assert exported == (worker.pid, 3) and rejected == []
    finally:
        worker.close()


async def _exists(path: Path) -> bool:
    return path.exists()
