"""aiokafka plumbing shared by the outbox relay and the consumers.

Works on Apache Kafka and on the embedded Tansu broker, which has neither the idempotent
producer nor transactions: we never ask for them. Exactly-once in effect comes from the outbox
(producer side) and from dedup by event id in the consumer's own transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

log = logging.getLogger("postsales.kafka")


def make_producer(bootstrap: str, *, client_id: str, request_timeout_ms: int = 15000) -> AIOKafkaProducer:
    # acks=all and one in-flight request per partition (aiokafka's sender) keep per-key order
    # across retries without the idempotent producer, which the embedded broker lacks.
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        acks="all",
        enable_idempotence=False,
        linger_ms=2,
        max_batch_size=256 * 1024,
        request_timeout_ms=request_timeout_ms,
        retry_backoff_ms=200,
    )


async def ensure_topics(bootstrap: str, topics: Iterable[str], *, partitions: int) -> None:
    """Create the topics that do not exist yet; existing ones are left as they are."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in dict.fromkeys(topics) if t not in existing]
        if not missing:
            return
        try:
            await admin.create_topics(
                [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in missing]
            )
        except TopicAlreadyExistsError:
            pass
        except KafkaError as exc:
            # Another replica may have created some of them between list and create.
            log.info("create_topics: %s", exc)
    finally:
        await admin.close()


async def start_with_retry(start: object, *, what: str, stop: asyncio.Event, delay: float = 1.0) -> bool:
    """Call ``await start()`` until it succeeds or ``stop`` is set; returns whether it started."""
    assert callable(start)
    attempt = 0
    while not stop.is_set():
        try:
            await start()
            return True
        except (KafkaError, OSError) as exc:
            attempt += 1
            if attempt == 1 or attempt % 30 == 0:
                log.warning("%s: broker not reachable yet (%s); retrying", what, type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=min(delay * attempt, 5.0))
    return False
