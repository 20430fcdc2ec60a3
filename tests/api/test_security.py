"""Security checks over every service's whole /v1 surface, read from its own OpenAPI document."""

from __future__ import annotations

import re

import pytest

from shared.testing.suite import SERVICES

NO_SCOPE = "test-no-scope-token-0123456789ab"


def operations(spec: dict) -> list[tuple[str, str]]:
    ops = []
    for path, item in spec["paths"].items():
        if not path.startswith("/v1"):
            continue
        for method in item:
            if method in {"get", "post", "put", "patch", "delete"}:
                ops.append((method.upper(), re.sub(r"\{[^}]+\}", "x", path)))
    return ops


@pytest.mark.parametrize("name", SERVICES)
async def test_every_v1_route_needs_a_token_and_its_scope(service, name: str) -> None:
    async with service(name, run_consumers=False, run_relay=False) as svc:
        spec = (await svc.client.get("/openapi.json")).json()
        ops = operations(spec)
        assert len(ops) >= 5
        anon, no_scope = svc.client_for(None), svc.client_for(NO_SCOPE)
        for method, path in ops:
            r = await anon.request(method, path, json={})
            assert r.status_code == 401, (method, path, r.status_code, r.text[:200])
            assert r.headers["content-type"].startswith("application/problem+json")
            r = await no_scope.request(method, path, json={})
            assert r.status_code == 403, (method, path, r.status_code, r.text[:200])
        # Every operation documents its security scheme, so clients know to send the token.
        for path, item in spec["paths"].items():
            if path.startswith("/v1"):
                for method, op in item.items():
                    assert op.get("security"), (method, path)


@pytest.mark.parametrize("name", SERVICES)
async def test_list_limits_are_bounded_and_bodies_capped(service, name: str) -> None:
    async with service(name, run_consumers=False, run_relay=False, max_body_bytes=10_000) as svc:
        spec = (await svc.client.get("/openapi.json")).json()
        lists = [p for p, item in spec["paths"].items()
                 if p.startswith("/v1") and "get" in item
                 and any(prm["name"] == "limit" for prm in item["get"].get("parameters", []))]
        for path in lists:
            for prm in spec["paths"][path]["get"]["parameters"]:
                if prm["name"] == "limit":
                    schema = prm["schema"].get("anyOf", [prm["schema"]])[0]
                    assert schema.get("maximum") == 500, (path, prm)
            if "{" not in path:
                r = await svc.client.get(path, params={"limit": 501})
                assert r.status_code == 422, (path, r.status_code)
        posts = [p for p, item in spec["paths"].items() if p.startswith("/v1") and "post" in item and "{" not in p]
        for path in posts:
            r = await svc.client.post(path, content=b"[" + b"1," * 20_000 + b"1]",
                                      headers={"content-type": "application/json"})
            assert r.status_code == 413, (path, r.status_code)
