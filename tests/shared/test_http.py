"""HTTP conventions every service shares: problem+json, auth, idempotency, pagination, limits, probes."""

from __future__ import annotations

import logging

import httpx
import pytest
from pydantic import ValidationError

from shared.auth import KeyStore
from shared.errors import Unprocessable
from shared.http import decode_cursor, encode_cursor
from shared.settings import ApiKey, hash_token
from shared.testing import ADMIN_TOKEN, eventually
from tests.shared import demo
from tests.shared.conftest import DemoSettings, count

PROBLEM = "application/problem+json"


def assert_problem(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["status"] == status and body["type"].startswith("https://") and body["title"] and body["detail"]
    assert "Traceback" not in r.text
    return body


async def test_errors_are_problem_json(demo_service) -> None:
    async with demo_service(run_relay=False, run_consumers=False) as svc:
        anon = svc.client_for(None)
        assert_problem(await anon.get("/v1/notes"), 401)
        assert (await anon.get("/v1/notes")).headers["www-authenticate"] == "Bearer"
        assert_problem(await svc.client_for("not-a-known-token-at-all").get("/v1/notes"), 401)
        body = assert_problem(await svc.client_for("test-lifecycle-ro-token-01234567").get("/v1/notes"), 403)
        assert "handoff:read" in body["detail"]
        ro = svc.client_for("test-handoff-ro-token-0123456789")
        assert (await ro.get("/v1/notes")).status_code == 200
        assert_problem(await ro.post("/v1/notes", json={"id": "a", "account_id": "b", "text": "c"}), 403)
        assert_problem(await svc.client.get("/v1/notes/missing"), 404)
        assert_problem(await svc.client.get("/v1/no-such-route"), 404)
        assert_problem(await svc.client.delete("/v1/notes"), 405)
        body = assert_problem(await svc.client.post("/v1/notes", json={"id": 1}), 422)
        locs = {tuple(e["loc"]) for e in body["errors"]}
        assert ("body", "account_id") in locs and ("body", "text") in locs
        body = assert_problem(await svc.client.post("/v1/notes", content=b"{oops",
                                                     headers={"content-type": "application/json"}), 422)
        assert_problem(await svc.client.get("/v1/notes", params={"limit": 501}), 422)
        assert_problem(await svc.client.get("/v1/notes", params={"cursor": "!!!"}), 422)


async def test_unexpected_errors_are_a_500_problem_without_internals(demo_service, monkeypatch) -> None:
    async with demo_service(run_relay=False, run_consumers=False) as svc:
        def boom(*a, **k):
            raise ZeroDivisionError("secret internal detail")

        monkeypatch.setattr(demo.NoteOut, "model_validate", boom)
        await svc.client.post("/v1/notes", json={"id": "n1", "account_id": "a", "text": "x"})
        r = await svc.client.get("/v1/notes/n1")
        body = assert_problem(r, 500)
        assert "secret" not in r.text and "ZeroDivision" not in r.text
        assert body["detail"] == "an unexpected error occurred"


async def test_idempotency_key_replays_the_first_response_and_refuses_another_body(demo_service) -> None:
    async with demo_service(run_relay=False, run_consumers=False) as svc:
        h = {"Idempotency-Key": "k-123"}
        first = await svc.client.post("/v1/notes", json={"id": "n1", "account_id": "a", "text": "x"}, headers=h)
        again = await svc.client.post("/v1/notes", json={"account_id": "a", "id": "n1", "text": "x"}, headers=h)
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json()
        assert again.headers["idempotent-replayed"] == "true"
        assert await count(svc, demo.Note) == 1
        assert await count(svc, svc.ctx.infra.outbox) == 1
        other = await svc.client.post("/v1/notes", json={"id": "n2", "account_id": "a", "text": "y"}, headers=h)
        body = assert_problem(other, 422)
        assert "Idempotency-Key" in body["detail"]
        assert await count(svc, demo.Note) == 1
        # Another token's identical key is another scope.
        rw = svc.client_for("test-handoff-rw-token-0123456789")
        r = await rw.post("/v1/notes", json={"id": "n3", "account_id": "a", "text": "x"}, headers=h)
        assert r.status_code == 201


async def test_cursor_pagination_walks_every_item_once(demo_service) -> None:
    async with demo_service(run_relay=False, run_consumers=False) as svc:
        for i in range(23):
            r = await svc.client.post("/v1/notes", json={"id": f"n{i:02}", "account_id": "a", "text": "x"})
            assert r.status_code == 201
        seen, cursor = [], None
        while True:
            params = {"limit": 5} | ({"cursor": cursor} if cursor else {})
            page = (await svc.client.get("/v1/notes", params=params)).json()
            seen += [n["id"] for n in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == 23 and set(seen) == {f"n{i:02}" for i in range(23)}
        assert seen[0] == "n22"  # newest first


def test_cursor_round_trip_and_rejects_tampering() -> None:
    import datetime as dt
    from decimal import Decimal

    values = [dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC), dt.date(2026, 1, 2), Decimal("1.50"), "x", 3]
    assert decode_cursor(encode_cursor(values), 5) == values
    with pytest.raises(Unprocessable):
        decode_cursor(encode_cursor(values), 2)
    with pytest.raises(Unprocessable):
        decode_cursor("e30", 1)


async def test_bodies_over_the_limit_get_413(demo_service) -> None:
    async with demo_service(run_relay=False, run_consumers=False, max_body_bytes=1000) as svc:
        r = await svc.client.post("/v1/notes", content=b"x" * 5000, headers={"content-type": "application/json"})
        assert_problem(r, 413)

        async def chunks():
            for _ in range(10):
                yield b"x" * 500

        r = await svc.client.post("/v1/notes", content=chunks(), headers={"content-type": "application/json"})
        assert_problem(r, 413)
        assert await count(svc, demo.Note) == 0


async def test_probes_and_metrics(demo_service) -> None:
    async with demo_service(run_consumers=False) as svc:
        anon = svc.client_for(None)
        assert (await anon.get("/healthz")).json() == {"status": "ok"}

        async def ready():
            r = await anon.get("/readyz")
            return r if r.status_code == 200 else None

        r = await eventually(ready, message="readyz 200 once the relay is connected")
        assert r.json()["checks"] == {"database": "ok", "broker": "ok"}
        await svc.client.post("/v1/notes", json={"id": "n1", "account_id": "a", "text": "x"})
        text = (await anon.get("/metrics")).text
        for name in ("http_requests_total", "outbox_backlog", "consumer_lag", "dlq_messages_total",
                     "event_handler_duration_seconds"):
            assert name in text
        assert 'route="/v1/notes",status="201"' in text
        assert (await anon.get("/openapi.json")).status_code == 200
        assert r.headers["x-request-id"]


async def test_readyz_is_503_when_the_broker_is_unreachable(demo_service) -> None:
    from shared.events.broker import free_port

    async with demo_service(run_consumers=False, kafka_bootstrap_servers=f"127.0.0.1:{free_port()}") as svc:
        r = await svc.client_for(None).get("/readyz")
        assert r.status_code == 503
        assert r.json()["checks"]["database"] == "ok"
        assert r.json()["checks"]["broker"].startswith("down")
        # Writes still succeed: the event waits in the outbox.
        w = await svc.client.post("/v1/notes", json={"id": "n1", "account_id": "a", "text": "x"})
        assert w.status_code == 201
        assert await count(svc, svc.ctx.infra.outbox) == 1


async def test_tokens_never_reach_the_logs(demo_service, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    async with demo_service(run_relay=False, run_consumers=False) as svc:
        await svc.client.get("/v1/notes")
        await svc.client_for("wrong-token-value-xyz-123456").get("/v1/notes")
    assert ADMIN_TOKEN not in caplog.text and "wrong-token-value-xyz" not in caplog.text


def test_keys_accept_sha256_form_and_refuse_placeholders() -> None:
    token = "a-real-long-random-token-value"
    store = KeyStore({hash_token(token): ["metrics:read"]})
    principal = store.authenticate(token)
    assert principal is not None and principal.has("metrics:read") and not principal.has("admin")
    assert store.authenticate(token + "x") is None
    with pytest.raises(ValidationError):
        DemoSettings(postsales_api_keys={"changeme": ["admin"]})
    with pytest.raises(ValidationError):
        DemoSettings(postsales_api_keys={"a-long-enough-token-123": ["root"]})
    with pytest.raises(ValidationError):
        DemoSettings(postsales_api_keys='{"short": ["admin"]}')
    with pytest.raises(ValidationError):
        DemoSettings(postsales_api_keys={"a-long-enough-token-123": {"scopes": ["admin"], "team": "x"}})


def test_a_key_may_name_its_owner() -> None:
    s = DemoSettings(postsales_api_keys='{"a-long-enough-token-123": {"scopes": ["lifecycle:read"], "owner": "kim"},'
                                        ' "another-long-token-4567": ["admin"]}')
    store = KeyStore(s.postsales_api_keys)
    kim = store.authenticate("a-long-enough-token-123")
    assert kim is not None and kim.owner == "kim" and kim.has("lifecycle:read") and not kim.has("admin")
    anon = store.authenticate("another-long-token-4567")
    assert anon is not None and anon.owner is None and anon.has("admin")


def test_per_service_env_overrides_the_shared_one(monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "sqlite+aiosqlite:///shared.db")
    monkeypatch.setenv("DEMO_DATABASE_URL", "sqlite+aiosqlite:///demo.db")
    monkeypatch.setenv("POSTSALES_API_KEYS", '{"a-long-enough-token-123": ["admin"]}')
    s = DemoSettings()
    assert s.database_url == "sqlite+aiosqlite:///demo.db"
    assert s.postsales_api_keys == {"a-long-enough-token-123": ApiKey(scopes=["admin"])}


async def test_nul_characters_are_refused_before_any_backend_sees_them(demo_service) -> None:
    async with demo_service(run_relay=False, run_consumers=False) as svc:
        r = await svc.client.post("/v1/notes", content=b'{"id": "n1", "account_id": "a", "text": "x\\u0000y"}',
                                  headers={"content-type": "application/json"})
        assert_problem(r, 422)
        assert_problem(await svc.client.get("/v1/notes", params={"cursor": "a\x00b"}), 422)
        assert_problem(await svc.client.get("/v1/notes/a%00b"), 422)
        # An escaped backslash followed by "u0000" is ordinary text.
        r = await svc.client.post("/v1/notes", content=b'{"id": "n2", "account_id": "a", "text": "x\\\\u0000"}',
                                  headers={"content-type": "application/json"})
        assert r.status_code == 201 and r.json()["text"] == "x\\u0000"
        assert await count(svc, demo.Note) == 1
