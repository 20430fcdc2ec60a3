"""Date and period parameters stay inside the calendar: a clear 422, never a 500."""

from __future__ import annotations

from typing import Any

import pytest

READ = "test-metrics-ro-token-0123456789"


@pytest.mark.parametrize("params", [
    {"to": "0001-01-01"}, {"to": "9999-12-31"}, {"from": "0001-01-01"}, {"from": "9999-12-31"},
    {"from": "1899-12-31", "to": "1900-01-10"}, {"from": "2999-12-01", "to": "3000-01-01"},
])
async def test_kpis_and_usage_refuse_dates_outside_the_calendar_window(service: Any, params: dict[str, str]) -> None:
    async with service("metrics", run_consumers=False, run_relay=False) as svc:
        reader = svc.client_for(READ)
        for path in ("/v1/kpis", "/v1/accounts/acme/usage"):
            r = await reader.get(path, params=params)
            assert r.status_code == 422, (path, params, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert "1900-01-01 to 2999-12-31" in r.text, r.text
        r = await svc.client.post("/v1/recompute", json={"from": "0001-01-01", "to": "0001-01-02", **params})
        assert r.status_code == 422, r.text


async def test_the_edges_of_the_window_compute(service: Any) -> None:
    async with service("metrics", run_consumers=False, run_relay=False) as svc:
        reader = svc.client_for(READ)
        for params in ({"to": "1900-01-01"}, {"from": "2999-12-31", "to": "2999-12-31"},
                       {"from": "1900-01-01", "to": "1900-01-01"}):
            for path in ("/v1/kpis", "/v1/accounts/acme/usage"):
                r = await reader.get(path, params=params)
                assert r.status_code == 200, (path, params, r.text)
        r = await reader.get("/v1/kpis", params={"to": "1900-01-01"})
        assert r.json()["from"] == "1899-10-04"  # the default 90-day window before 'to' is still a date
        r = await svc.client.post("/v1/recompute", json={"from": "2999-12-31", "to": "2999-12-31"})
        assert r.status_code == 200, r.text
