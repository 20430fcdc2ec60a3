"""Idempotent Kafka consumers with bounded retries and a dead-letter topic.

For each ``getmany()`` batch the consumer, in ONE database transaction, drops the events this
consumer already processed (by ``source`` + ``id``), records the new ones as processed and runs
the handler; only after that transaction commits does it commit the partitions' offsets. A crash
between the two replays the batch, and the dedup table makes the replay a no-op. With
:class:`~.offsets.DatabaseOffsets` the offsets are written in that same transaction instead, and
read back on assignment (the Kafka commit then only feeds lag tooling).

A message that cannot be decoded (bad JSON, unknown type, schema violation, or a decoder that raises
anything at all) goes straight to ``<topic>.dlq``, and so does, for a consumer with dedup, an event whose time is
older than ``MAX_EVENT_AGE`` or further ahead than ``MAX_FUTURE_SKEW`` (:class:`~.base.TimeGuard`). A batch whose
handler fails is retried with backoff; if it still fails, it is replayed by halves until the events that
keep failing stand alone, and those go to the DLQ with the error and their original coordinates. Only a
real outage (database unreachable or locked, see :mod:`.retry`) is waited out instead, with no DLQ and no
offset moving.

Batches are pipelined: while one batch is in the database, the next is fetched and decoded (and planned,
for a :class:`~.base.BatchPlanner`), a chunk at a time so that the batch in the database is not kept
waiting; a :class:`~.base.RemotePlanner` can have large batches decoded and planned in a worker process
instead (:mod:`.worker`). Every fetched batch is applied, one at a time and in fetch order, and its
offsets are committed only after its own transaction. None is ever skipped, not even across a
rebalance: the fetch positions are already past it, so a later commit would pass over it. A
revocation therefore waits until the batches in hand are applied and committed.

Nothing stalls in silence: a DLQ publish is bounded (timeout, attempts) and while the DLQ refuses a
message its partition is held before it, ``readiness()`` says so and ``dlq_publish_failures_total``
counts; a partition with lag that makes no progress for ``stuck_after`` seconds shows in
``readiness()`` (so in ``/readyz``) and in ``consumer_stuck_partitions`` /
``consumer_seconds_since_progress``.

Modules: :mod:`.base` (handler types, ``PermanentError``), :mod:`.pipeline` (the loop),
:mod:`.retry` (retry policy, error classification), :mod:`.dedup` (``processed_events``),
:mod:`.dlq` (the DLQ publisher), :mod:`.offsets` (where progress is kept: the seam for offsets stored
in the database), :mod:`.worker` (decoding and planning in a worker process), :mod:`.progress` (the
stuck-partition rule), :mod:`.health` (readiness and gauges).
"""

from shared.events.consumer.base import (
    BatchHandler,
    BatchPlan,
    BatchPlanner,
    Decoder,
    Delivery,
    EventHandler,
    ExportablePlan,
    PermanentError,
    RemotePlanner,
    TimeGuard,
    decode_cloudevent,
)
from shared.events.consumer.dlq import DeadLetterPublisher, DeadLetterUnavailable
from shared.events.consumer.offsets import DatabaseOffsets, KafkaOffsets, OffsetStore, consumer_offsets_table
from shared.events.consumer.pipeline import EventConsumer
from shared.events.consumer.retry import RetryPolicy, is_infrastructure_error

__all__ = [
    "BatchHandler", "BatchPlan", "BatchPlanner", "DatabaseOffsets", "DeadLetterPublisher", "DeadLetterUnavailable",
    "Decoder", "Delivery",
    "EventConsumer", "EventHandler", "ExportablePlan", "KafkaOffsets", "OffsetStore", "PermanentError",
    "RemotePlanner", "RetryPolicy", "TimeGuard",
    "consumer_offsets_table", "decode_cloudevent", "is_infrastructure_error",
]
