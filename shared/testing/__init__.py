"""Test support: a real broker, real databases (SQLite and PostgreSQL), and service apps over HTTP."""

from shared.testing.helpers import (
    ADMIN_TOKEN,
    TEST_API_KEYS,
    KafkaProbe,
    RunningService,
    eventually,
    kafka_client,
    make_event,
    topic_partitions,
)

__all__ = ["ADMIN_TOKEN", "TEST_API_KEYS", "KafkaProbe", "RunningService", "eventually", "kafka_client", "make_event",
           "topic_partitions"]
