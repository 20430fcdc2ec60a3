"""The metrics service's consumer groups."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics.facts.service import apply_fact
from services.metrics.feedback.service import apply_feedback
from services.metrics.models import consumer_offsets
from services.metrics.settings import Settings
from services.metrics.usage.envelope import UsageDecoder
from services.metrics.usage.service import SegmentOffsets, UsageHandler
from services.metrics.validation import Bounds
from shared.app import ConsumerSpec, ServiceContext
from shared.events.envelope import CloudEvent
from shared.events.registry import FEEDBACK_TOPIC, HANDOFF_TOPIC, LIFECYCLE_TOPIC, USAGE_TOPIC


def consumer_specs(ctx: ServiceContext[Settings]) -> list[ConsumerSpec]:
    """The consumer groups, their checks bounded by the settings (out-of-bounds events are dead-lettered)."""
    bounds = Bounds.of(ctx.settings)

    async def feedback(session: AsyncSession, event: CloudEvent) -> None:
        await apply_feedback(session, event, bounds)

    return [
        # Volume path: msgspec decoding, then one transaction per batch of up to METRICS_USAGE_BATCH_EVENTS,
        # written at driver level. The handler inserts the events' source + id keys ON CONFLICT DO NOTHING
        # and counts only the new ones: idempotent by itself, so the foundation's processed_events
        # bookkeeping is skipped. Its offsets live in the database, committed with each batch's effects
        # (and recorded on the batch's raw segments). Large batches are decoded and planned in a worker
        # process while the batch before is in the database.
        ConsumerSpec(name="metrics-usage", topics=[USAGE_TOPIC], batch_handler=UsageHandler(), dedup=False,
                     decode=UsageDecoder(bounds), batch_size=ctx.settings.usage_batch_events,
                     batch_wait=ctx.settings.usage_batch_wait_ms / 1000,
                     plan_in_worker=ctx.settings.usage_plan_worker,
                     worker_min_batch=ctx.settings.usage_plan_worker_min_batch,
                     offsets=lambda group: SegmentOffsets(consumer_offsets, ctx.session_factory, group)),
        ConsumerSpec(name="metrics-feedback", topics=[FEEDBACK_TOPIC], handler=feedback),
        ConsumerSpec(name="metrics-facts", topics=[LIFECYCLE_TOPIC, HANDOFF_TOPIC], handler=apply_fact),
    ]
