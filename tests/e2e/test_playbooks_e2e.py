"""A play end to end, as processes: an NPS detractor posted to metrics becomes a follow-up task on the
account owner's worklist in lifecycle within seconds; doing it completes the run."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from shared.testing.helpers import eventually
from shared.testing.suite import Suite

pytestmark = pytest.mark.timeout(600)

NPS_PLAYBOOK = "00000000-0000-4000-9000-000000000002"


async def _json(r: httpx.Response, status: int) -> Any:
    assert r.status_code == status, (r.request.method, r.request.url, r.status_code, r.text)
    return r.json()


async def test_nps_detractor_lands_on_the_owners_worklist(suite: Suite) -> None:
    account = f"pb-{uuid.uuid4().hex[:8]}"
    owner = f"csm.{account}@vendor.example"
    async with suite.client("lifecycle") as lifecycle, suite.client("metrics") as metrics:
        await _json(await lifecycle.post("/v1/accounts", json={
            "id": account, "name": "Playbook Corp", "stage": "adoption", "owner": owner}), 201)
        promoter = await _json(await metrics.post("/v1/surveys", json={
            "account_id": account, "kind": "nps", "score": 10, "respondent": "fan@customer.example"}), 202)
        posted = time.monotonic()
        detractor = await _json(await metrics.post("/v1/surveys", json={
            "account_id": account, "kind": "nps", "score": 3, "respondent": "cfo@customer.example",
            "comment": "Too many outages"}), 202)

        async def on_worklist() -> list[dict[str, Any]]:
            items: list[dict[str, Any]] = (await _json(await lifecycle.get(
                "/v1/tasks", params={"owner": owner, "status": "open"}), 200))["items"]
            return items

        [task] = await eventually(on_worklist, timeout=60, interval=0.2, message="follow-up on the worklist")
        took = time.monotonic() - posted
        assert took < 30, f"the follow-up took {took:.1f}s to reach the worklist"
        assert task["account_id"] == account and task["kind"] == "playbook"
        assert task["title"] == "Follow-up call with the NPS detractor"
        assert task["playbook"] == {"id": NPS_PLAYBOOK, "name": "NPS detractor follow-up"}

        [run] = (await _json(await lifecycle.get(f"/v1/accounts/{account}/playbook-runs"), 200))["items"]
        assert run["status"] == "active" and run["task_ids"] == [task["id"]]
        assert run["trigger"]["event_id"] == detractor["event_id"] != promoter["event_id"]

        await _json(await lifecycle.patch(f"/v1/accounts/{account}/tasks/{task['id']}", json={"status": "done"}),
                    200)
        [run] = (await _json(await lifecycle.get(f"/v1/accounts/{account}/playbook-runs"), 200))["items"]
        assert run["status"] == "completed" and run["ended_at"] is not None
        assert await on_worklist() == []
        stats = await _json(await lifecycle.get(f"/v1/playbooks/{NPS_PLAYBOOK}/stats"), 200)
        assert stats["completed"] >= 1 and stats["median_days_to_complete"] is not None
