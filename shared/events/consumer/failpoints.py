"""Test-only fail-points: the process SIGKILLs itself at a named step of a consumer's transaction.

Armed by ``POSTSALES_FAILPOINTS``, read once when this module is imported: a comma-separated list of
``<consumer>:<step>[@<n>]``. The ``n``-th time (default: the first) consumer ``<consumer>`` reaches
``<step>`` in this process, one line naming the point and the offsets at stake goes to stderr, and the
process sends itself SIGKILL: no shutdown hook, no ``finally``, no last commit. For example
``POSTSALES_FAILPOINTS=metrics-usage:before_commit@3`` kills the metrics service in its third usage
transaction, after that batch's effects and offsets are written and before they are committed.

The steps, in the order a batch meets them (``tests/metrics/test_hotpath_crash.py`` kills at each):

- ``before_write``: the transaction is open, nothing written yet;
- ``before_commit``: the batch's effects and its offsets are written (flushed), not committed;
- ``after_commit``: the transaction committed, the Kafka commit not made;
- ``after_kafka_commit``: the Kafka commit made, the batch settled.

Unset (production), :data:`ARMED` is empty and the pipeline pays one truth test per step. A value that
does not parse stops the process at import: a misspelt point must not make a crash test pass unarmed.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Mapping

from aiokafka import TopicPartition

ENV = "POSTSALES_FAILPOINTS"
STEPS = ("before_write", "before_commit", "after_commit", "after_kafka_commit")


def parse(value: str) -> dict[str, int]:
    """``<consumer>:<step>[@<n>]`` items -> {``<consumer>:<step>``: n}; ValueError on anything else."""
    points: dict[str, int] = {}
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        name, at, nth = item.partition("@")
        consumer, _, step = name.rpartition(":")
        if not consumer or step not in STEPS or (at and not nth.isdigit()) or (at and int(nth) < 1):
            raise ValueError(f"{ENV}: {item!r} is not <consumer>:<step>[@<n>] with a step in {', '.join(STEPS)}")
        points[name] = int(nth) if at else 1
    return points


ARMED: dict[str, int] = parse(os.environ.get(ENV, ""))
_reached: Counter[str] = Counter()


def reach(consumer: str, step: str, offsets: Mapping[TopicPartition, int]) -> None:
    """Count one passage of ``consumer`` through ``step``; on the armed one, SIGKILL this process."""
    name = f"{consumer}:{step}"
    nth = ARMED.get(name)
    if nth is None:
        return
    _reached[name] += 1
    if _reached[name] == nth:
        at_stake = " ".join(f"{tp.topic}[{tp.partition}]={o}" for tp, o in sorted(offsets.items()))
        os.write(2, f"FAILPOINT {name}@{nth}: SIGKILL; this transaction's offsets: {at_stake}\n".encode())
        os.kill(os.getpid(), signal.SIGKILL)
