from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import func, select

from services.handoff.models import Commitment, CommitmentChange, Handoff, HandoffTransition, infra
from shared.testing import RunningService

PROBLEM = "application/problem+json"


def complete_body(**overrides: Any) -> dict[str, Any]:
    """A handoff body that satisfies the default checklist."""
    suffix = uuid.uuid4().hex[:8]
    body: dict[str, Any] = {
        "account": {
            "external_id": f"acme-{suffix}", "name": "Acme Corp", "segment": "enterprise", "plan": "Business",
            "seats": 250, "arr": "120000.50", "currency": "USD", "contract_start": "2026-12-01",
            "renewal_date": "2027-12-01",
        },
        "crm_opportunity_id": f"OPP-{suffix}",
        "challenges": ["Manual onboarding of 40 sites", "No audit trail"],
        "goals": ["Onboard all sites within 60 days"],
        "proposal": "Business plan with SSO",
        "demo_notes": "Loved bulk import",
        "commitments": [
            {"title": "SSO with Okta", "kind": "integration", "due_date": "2030-01-15", "owner": "tam@example.com"},
            {"title": "Admin training", "kind": "training", "due_date": "2030-02-01",
             "description": "Two sessions for 10 admins"},
        ],
        "stakeholders": [{"name": "Hanako Yamada", "role": "VP Ops", "email": "hanako@acme.example",
                          "champion": True}],
        "risks": ["IT understaffed until January"],
        "presales_owner": "ae.sato@example.com",
        "postsales_owner": "csm.kato@example.com",
    }
    body.update(overrides)
    return body


def minimal_body(**overrides: Any) -> dict[str, Any]:
    suffix = uuid.uuid4().hex[:8]
    body: dict[str, Any] = {"account": {"external_id": f"min-{suffix}", "name": "Minimal Inc"},
                            "crm_opportunity_id": f"OPP-MIN-{suffix}"}
    body.update(overrides)
    return body


async def create(svc: RunningService, body: dict[str, Any] | None = None, **headers: str) -> dict[str, Any]:
    r = await svc.client.post("/v1/handoffs", json=body or complete_body(), headers=headers)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def accepted(svc: RunningService, body: dict[str, Any] | None = None) -> dict[str, Any]:
    h = await create(svc, body)
    r = await svc.client.post(f"/v1/handoffs/{h['id']}/submit", json={})
    assert r.status_code == 200, r.text
    r = await svc.client.post(f"/v1/handoffs/{h['id']}/accept", json={"by": "csm.kato@example.com"})
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


async def snapshot(svc: RunningService) -> dict[str, Any]:
    """Row counts of every table plus the outbox, to prove a refused request wrote nothing."""
    out: dict[str, Any] = {}
    async with svc.ctx.session_factory() as s:
        for name, table in [("handoffs", Handoff), ("transitions", HandoffTransition), ("commitments", Commitment),
                            ("changes", CommitmentChange)]:
            out[name] = (await s.execute(select(func.count()).select_from(table))).scalar_one()
        out["outbox"] = (await s.execute(select(func.count()).select_from(infra.outbox))).scalar_one()
        out["statuses"] = sorted((await s.execute(select(Handoff.id, Handoff.status, Handoff.updated_at))).all())
        out["commitment_rows"] = sorted((await s.execute(
            select(Commitment.id, Commitment.status, Commitment.title, Commitment.updated_at))).all())
    return out


async def outbox_types(svc: RunningService) -> list[str]:
    import json

    async with svc.ctx.session_factory() as s:
        rows = (await s.execute(select(infra.outbox.c.payload).order_by(infra.outbox.c.id))).scalars().all()
    return [json.loads(p)["type"] for p in rows]


def assert_problem(r: Any, status: int, *fragments: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM), r.headers["content-type"]
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["title"] and body["type"].startswith("https://")
    for f in fragments:
        assert f in body["detail"], (f, body["detail"])
    return body


def past(days: int) -> str:
    return (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=days)).isoformat()
