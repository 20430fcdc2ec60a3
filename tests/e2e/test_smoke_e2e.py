from __future__ import annotations

from shared.testing.suite import SERVICES


async def test_every_service_is_ready_and_authenticates(suite) -> None:
    for name in SERVICES:
        async with suite.client(name) as c:
            assert (await c.get("/readyz")).status_code == 200
            assert (await c.get("/openapi.json")).status_code == 200
        async with suite.client(name, token="not-a-token-of-this-suite") as c:
            spec = (await c.get("/openapi.json")).json()
            v1 = [p for p in spec["paths"] if p.startswith("/v1")]
            assert v1, f"{name} has no /v1 routes"
            r = await c.get(v1[0].split("{")[0].rstrip("/"))
            assert r.status_code in (401, 405), (name, v1[0], r.status_code)
