"""The real handoff service and lifecycle together on one broker: accept → onboard → deliver."""

from __future__ import annotations

from services.lifecycle.models import Task
from shared.testing import eventually
from tests.lifecycle.conftest import count_rows

HANDOFF = {
    "account": {"external_id": "wayne-ent", "name": "Wayne Enterprises", "segment": "enterprise", "plan": "scale",
                "seats": 500, "arr": "250000.00", "currency": "USD", "contract_start": "2026-02-01",
                "renewal_date": "2027-02-01"},
    "crm_opportunity_id": "OPP-WAYNE-1",
    "challenges": ["Manual reporting"], "goals": ["Automate reporting"], "proposal": "Scale plan, 500 seats",
    "demo_notes": "Loved the dashboards", "risks": ["Tight IT team"],
    "commitments": [{"title": "SAP integration", "kind": "integration", "due_date": "2026-04-01",
                     "description": "Nightly sync"},
                    {"title": "99.9% SLA", "kind": "sla", "due_date": "2026-03-01"}],
    "stakeholders": [{"name": "Lucius Fox", "role": "Champion", "email": "lucius@wayne.example"}],
    "presales_owner": "ae.bob@vendor.example", "postsales_owner": "csm.jane@vendor.example",
}


async def test_accepted_handoff_onboards_and_task_completion_delivers_the_commitment(service) -> None:
    async with service("handoff") as handoff, service("lifecycle", run_scheduler=False) as lifecycle:
        r = await handoff.client.post("/v1/handoffs", json=HANDOFF)
        assert r.status_code == 201, r.text
        hid = r.json()["id"]
        assert (await handoff.client.post(f"/v1/handoffs/{hid}/submit")).status_code == 200
        assert (await handoff.client.post(f"/v1/handoffs/{hid}/accept", json={})).status_code == 200

        async def onboarded() -> dict | None:
            r = await lifecycle.client.get("/v1/accounts/wayne-ent")
            return r.json() if r.status_code == 200 else None

        acc = await eventually(onboarded, timeout=30, message="account from the accepted handoff")
        assert (acc["stage"], acc["owner"], acc["arr"], acc["handoff_id"]) == (
            "onboarding", "csm.jane@vendor.example", "250000.00", hid)
        tasks = (await lifecycle.client.get("/v1/accounts/wayne-ent/tasks",
                                            params={"kind": "commitment"})).json()["items"]
        assert sorted(t["title"] for t in tasks) == ["99.9% SLA", "SAP integration"]
        assert await count_rows(lifecycle, Task) == 5 + 2
        sap = next(t for t in tasks if t["title"] == "SAP integration")

        r = await lifecycle.client.patch(f"/v1/accounts/wayne-ent/tasks/{sap['id']}", json={"status": "done"})
        assert r.status_code == 200, r.text

        async def delivered() -> bool:
            r = await handoff.client.get(f"/v1/handoffs/{hid}")
            commitments = {c["id"]: c["status"] for c in r.json()["commitments"]}
            return commitments.get(sap["commitment_id"]) == "delivered"

        await eventually(delivered, timeout=30, message="commitment delivered in the handoff service")

        # ... and the handoff's commitment.updated comes back onto the account's timeline.
        async def on_timeline() -> bool:
            items = (await lifecycle.client.get("/v1/accounts/wayne-ent/timeline")).json()["items"]
            return any(i["type"] == "postsales.commitment.updated" and i["data"]["status"] == "delivered"
                       for i in items)

        await eventually(on_timeline, timeout=30, message="commitment update on the timeline")
