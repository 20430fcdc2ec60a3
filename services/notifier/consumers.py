"""Event handlers: every domain event is evaluated against the rules."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier.alerts.service import evaluate
from services.notifier.context import NotifierContext
from shared.app import ConsumerSpec
from shared.events import CloudEvent
from shared.events.registry import FEEDBACK_TOPIC, HANDOFF_TOPIC, LIFECYCLE_TOPIC, METRICS_TOPIC, USAGE_TOPIC


def consumer_specs(ctx: NotifierContext) -> list[ConsumerSpec]:
    """One group over the domain topics; the usage topic only when ``consume_usage`` is on (it is
    high-volume, and rules on ``usage.*`` are refused otherwise)."""
    topics = [HANDOFF_TOPIC, LIFECYCLE_TOPIC, FEEDBACK_TOPIC, METRICS_TOPIC]
    engine = ctx.extension.engine
    if ctx.settings.consume_usage:
        topics.append(USAGE_TOPIC)

    async def handle(session: AsyncSession, event: CloudEvent) -> None:
        await evaluate(session, engine, event)

    # The group id carries the topic prefix: deployments (and tests) sharing a cluster stay apart.
    return [ConsumerSpec(name="notifier-events", topics=topics, handler=handle)]
