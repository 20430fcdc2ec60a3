"""The metrics service's consumer groups."""

from __future__ import annotations

from services.metrics.facts.service import apply_fact
from services.metrics.feedback.service import apply_feedback
from services.metrics.settings import Settings
from services.metrics.usage.envelope import decode_usage
from services.metrics.usage.service import apply_usage_batch
from shared.app import ConsumerSpec, ServiceContext
from shared.events.registry import FEEDBACK_TOPIC, HANDOFF_TOPIC, LIFECYCLE_TOPIC, USAGE_TOPIC


def consumer_specs(ctx: ServiceContext[Settings]) -> list[ConsumerSpec]:
    """The consumer groups."""
    return [
        # Volume path: msgspec decoding, then one transaction and a handful of set-based statements per
        # getmany() batch. The usage handler inserts raw events ON CONFLICT (source, id) DO NOTHING and
        # counts only what it inserted: idempotent by itself, so the foundation's processed_events
        # bookkeeping is skipped.
        ConsumerSpec(name="metrics-usage", topics=[USAGE_TOPIC], batch_handler=apply_usage_batch, dedup=False,
                     decode=decode_usage),
        ConsumerSpec(name="metrics-feedback", topics=[FEEDBACK_TOPIC], handler=apply_feedback),
        ConsumerSpec(name="metrics-facts", topics=[LIFECYCLE_TOPIC, HANDOFF_TOPIC], handler=apply_fact),
    ]
