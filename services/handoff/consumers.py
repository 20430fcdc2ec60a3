"""Event handlers: lifecycle's task events for commitment tasks update the ledger."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.handoff.commitments.service import apply_task_event
from services.handoff.settings import Settings
from shared.app import ConsumerSpec, ServiceContext
from shared.events import CloudEvent
from shared.events.outbox import Outbox
from shared.events.registry import LIFECYCLE_TOPIC, TaskPayload, parse_data

TASK_EVENTS = frozenset({"postsales.task.completed", "postsales.task.overdue"})


async def on_lifecycle_event(session: AsyncSession, outbox: Outbox, event: CloudEvent) -> None:
    """`task.completed` marks the task's commitment delivered; `task.overdue` marks it at risk."""
    if event.type not in TASK_EVENTS:
        return
    data = parse_data(event, TaskPayload)
    if not data.commitment_id:
        return
    handoff_id = event.data.get("handoff_id")
    await apply_task_event(session, outbox, event_type=event.type, commitment_id=data.commitment_id,
                           handoff_id=handoff_id if isinstance(handoff_id, str) else None, task_id=data.task_id,
                           at=event.time)


def consumer_specs(ctx: ServiceContext[Settings]) -> list[ConsumerSpec]:
    """The consumer groups."""

    async def tasks(session: AsyncSession, event: CloudEvent) -> None:
        await on_lifecycle_event(session, ctx.outbox, event)

    return [ConsumerSpec(name="handoff-commitments", topics=[LIFECYCLE_TOPIC], handler=tasks)]
