"""Event handlers: accepted handoffs create accounts and plans; health changes from metrics show on
accounts; handoff commitment updates go on the timeline."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.lifecycle.accounts import service as accounts
from services.lifecycle.context import LifecycleContext
from services.lifecycle.events import record
from services.lifecycle.settings import Settings
from shared.app import ConsumerSpec
from shared.events import CloudEvent
from shared.events.consumer import EventHandler
from shared.events.registry import (
    HANDOFF_TOPIC,
    METRICS_TOPIC,
    CommitmentUpdated,
    HandoffPayload,
    HealthChanged,
    RiskChanged,
    parse_data,
)

CONSUMER_NAME = "lifecycle-events"


def make_handler(settings: Settings) -> EventHandler:
    async def handle(session: AsyncSession, event: CloudEvent) -> None:
        if event.type == "postsales.handoff.accepted":
            await accounts.apply_handoff(session, event, parse_data(event, HandoffPayload), settings=settings)
        elif event.type == "postsales.health.changed":
            await accounts.apply_health(session, event, parse_data(event, HealthChanged))
        elif event.type == "postsales.risk.changed":
            await accounts.apply_risk(session, event, parse_data(event, RiskChanged))
        elif event.type == "postsales.commitment.updated":
            c = parse_data(event, CommitmentUpdated)
            account_id = str(event.data.get("account_id") or event.subject)
            record(session, account_id=account_id, type=event.type, occurred_at=event.time, event_id=event.id,
                   summary=f"Commitment '{c.title}': {c.previous_status or 'n/a'} → {c.status}", data=event.data)

    return handle


def consumer_specs(ctx: LifecycleContext) -> list[ConsumerSpec]:
    """The consumer groups."""
    return [ConsumerSpec(name=CONSUMER_NAME, topics=[HANDOFF_TOPIC, METRICS_TOPIC], handler=make_handler(ctx.settings))]
