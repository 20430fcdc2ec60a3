"""Event handlers: accepted handoffs create accounts and plans; health changes from metrics show on
accounts; handoff commitment updates go on the timeline; any event may start playbook runs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from services.lifecycle import clock
from services.lifecycle.accounts import service as accounts
from services.lifecycle.context import LifecycleContext
from services.lifecycle.events import record
from services.lifecycle.playbooks import runs as playbook_runs
from services.lifecycle.settings import Settings
from shared.app import ConsumerSpec
from shared.db import utcnow
from shared.events import CloudEvent
from shared.events.consumer import EventHandler
from shared.events.registry import (
    ALERTS_TOPIC,
    FEEDBACK_TOPIC,
    HANDOFF_TOPIC,
    LIFECYCLE_TOPIC,
    METRICS_TOPIC,
    CommitmentUpdated,
    HandoffPayload,
    HealthChanged,
    RiskChanged,
    parse_data,
)

CONSUMER_NAME = "lifecycle-events"
# Its own topic too: renewal windows and overdue tasks can start playbooks like any other event.
CONSUMED_TOPICS = (HANDOFF_TOPIC, METRICS_TOPIC, FEEDBACK_TOPIC, ALERTS_TOPIC, LIFECYCLE_TOPIC)


def make_handler(settings: Settings, now: Callable[[], dt.datetime] = utcnow) -> EventHandler:
    """The handler of every consumed event; ``now`` is the service clock (trigger age is measured by it)."""
    max_age = settings.max_trigger_age

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
        # Other types need no handling of their own. Any event (after the copies above are updated)
        # may start playbook runs on its account.
        await playbook_runs.on_event(session, event, now=now(), max_age=max_age)

    return handle


def consumer_specs(ctx: LifecycleContext) -> list[ConsumerSpec]:
    """The consumer groups."""
    def now() -> dt.datetime:
        return clock.now(ctx)

    return [ConsumerSpec(name=CONSUMER_NAME, topics=list(CONSUMED_TOPICS), handler=make_handler(ctx.settings, now),
                         clock=now)]
