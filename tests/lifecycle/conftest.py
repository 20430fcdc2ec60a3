"""Helpers for the lifecycle tests: faithful handoff events, a settable clock, outbox inspection."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from services.lifecycle.models import infra
from shared.events import CloudEvent
from shared.events.registry import AccountInfo, CommitmentInfo, HandoffPayload
from shared.testing import RunningService, make_event

HTTP_ONLY = {"run_consumers": False, "run_scheduler": False}


def handoff_payload(account_id: str, *, handoff_id: str | None = None, commitments: int = 2,
                    contract_start: dt.date = dt.date(2026, 1, 5), renewal_date: dt.date = dt.date(2027, 1, 5),
                    **account: Any) -> HandoffPayload:
    """What the handoff service publishes on acceptance, built with the registry's own model."""
    return HandoffPayload(
        handoff_id=handoff_id or str(uuid.uuid4()),
        account=AccountInfo(external_id=account_id, name=account.pop("name", f"{account_id} Inc"),
                            segment=account.pop("segment", "enterprise"), plan="scale", seats=250,
                            arr=Decimal("120000.50"), currency="EUR", contract_start=contract_start,
                            renewal_date=renewal_date, **account),
        crm_opportunity_id=f"OPP-{uuid.uuid4().hex[:8]}",
        status="accepted",
        presales_owner="ae.bob@vendor.example",
        postsales_owner="csm.jane@vendor.example",
        commitments=[
            CommitmentInfo(id=f"c-{i}-{uuid.uuid4().hex[:6]}", title=f"Commitment {i}",
                           kind=["integration", "sla", "training"][i % 3], status="open",
                           due_date=contract_start + dt.timedelta(days=30 * (i + 1)),
                           owner="tam.li@vendor.example" if i == 0 else None, description=f"promise {i}")
            for i in range(commitments)
        ],
        goals=["Cut onboarding time"], by="csm.jane@vendor.example",
    )


def accepted_event(payload: HandoffPayload, *, event_id: str | None = None,
                   time: dt.datetime | None = None) -> CloudEvent:
    return make_event("postsales.handoff.accepted", payload.account.external_id,
                      payload.model_dump(mode="json"), source="/services/handoff", id=event_id, time=time)


def set_clock(svc: RunningService, when: dt.datetime | dt.date) -> None:
    """Drive the service's clock (scheduler "today", completion times) from the test."""
    at = when if isinstance(when, dt.datetime) else dt.datetime.combine(when, dt.time(9, 0), dt.UTC)
    svc.ctx.extension.clock.frozen_at = at


async def outbox_events(svc: RunningService, type: str | None = None) -> list[dict[str, Any]]:
    """Every event the service wrote to its outbox (optionally of one type), oldest first."""
    t = infra.outbox
    async with svc.ctx.session_factory() as s:
        rows = (await s.execute(select(t.c.payload).order_by(t.c.id))).scalars().all()
    events = [json.loads(p) for p in rows]
    return [e for e in events if type is None or e["type"] == type]


async def count_rows(svc: RunningService, model: Any, *where: Any) -> int:
    async with svc.ctx.session_factory() as s:
        stmt = select(func.count()).select_from(model)
        for w in where:
            stmt = stmt.where(w)
        return int((await s.execute(stmt)).scalar_one())


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["type"] and body["title"] and body["detail"]
    return body
