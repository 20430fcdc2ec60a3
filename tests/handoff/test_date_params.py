"""Date query parameters stay inside the calendar: a clear 422, never a 500."""

from __future__ import annotations

from tests.handoff.conftest import assert_problem


async def test_commitments_due_before_is_bounded(service) -> None:
    async with service("handoff", run_consumers=False, run_relay=False) as svc:
        for day in ("0001-01-01", "9999-12-31", "1899-12-31", "3000-01-01"):
            r = await svc.client.get("/v1/commitments", params={"due_before": day})
            assert_problem(r, 422)
            assert "1900-01-01 to 2999-12-31" in r.text
        for day in ("1900-01-01", "2999-12-31"):
            r = await svc.client.get("/v1/commitments", params={"due_before": day})
            assert r.status_code == 200, r.text
