"""The events the handoff service emits, built from its rows (validated by the outbox on add)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from services.handoff.models import Commitment, Handoff
from shared.events import CloudEvent

SOURCE = "/services/handoff"


def is_overdue(c: Commitment, today: dt.date) -> bool:
    return c.due_date is not None and c.due_date < today and c.status in ("open", "in_progress", "at_risk")


def _date(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None


def account_data(h: Handoff) -> dict[str, Any]:
    return {
        "external_id": h.account_external_id, "name": h.account_name, "segment": h.account_segment,
        "plan": h.account_plan, "seats": h.account_seats, "arr": h.account_arr, "currency": h.account_currency,
        "contract_start": _date(h.account_contract_start), "renewal_date": _date(h.account_renewal_date),
    }


def commitment_data(c: Commitment) -> dict[str, Any]:
    return {"id": c.id, "title": c.title, "kind": c.kind, "status": c.status, "due_date": _date(c.due_date),
            "owner": c.owner, "description": c.description}


def handoff_event(event_type: str, h: Handoff, commitments: Sequence[Commitment], *, by: str | None,
                  reason: str | None, at: dt.datetime) -> CloudEvent:
    """`postsales.handoff.submitted|accepted|returned` with everything lifecycle needs to onboard."""
    data: dict[str, Any] = {
        "handoff_id": h.id,
        "account_id": h.account_external_id,
        "account": account_data(h),
        "crm_opportunity_id": h.crm_opportunity_id,
        "status": h.status,
        "presales_owner": h.presales_owner,
        "postsales_owner": h.postsales_owner,
        "commitments": [commitment_data(c) for c in commitments],
        "goals": list(h.goals),
        "challenges": list(h.challenges),
        "risks": list(h.risks),
        "stakeholders": list(h.stakeholders),
        "by": by,
        "reason": reason,
    }
    return CloudEvent.new(type=event_type, source=SOURCE, subject=h.account_external_id, data=data, time=at)


def commitment_event(c: Commitment, *, previous_status: str | None, today: dt.date, at: dt.datetime,
                     cause: str, note: str | None = None) -> CloudEvent:
    """`postsales.commitment.updated` for one ledger change."""
    data: dict[str, Any] = {
        "handoff_id": c.handoff_id,
        "commitment_id": c.id,
        "account_id": c.account_external_id,
        "title": c.title,
        "kind": c.kind,
        "status": c.status,
        "previous_status": previous_status,
        "due_date": _date(c.due_date),
        "owner": c.owner,
        "delivered_at": c.delivered_at.isoformat() if c.delivered_at else None,
        "overdue": is_overdue(c, today),
        "cause": cause,
        "note": note,
    }
    return CloudEvent.new(type="postsales.commitment.updated", source=SOURCE, subject=c.account_external_id,
                          data=data, time=at)
