"""The event bus: CloudEvents envelope, topic registry, transactional outbox, consumers, DLQ."""

from shared.events.envelope import CloudEvent, InvalidEvent
from shared.events.registry import EVENT_TYPES, TOPICS, dlq_topic, lookup, validate_event

__all__ = ["EVENT_TYPES", "TOPICS", "CloudEvent", "InvalidEvent", "dlq_topic", "lookup", "validate_event"]
