"""Accounts over HTTP: create, read, list, update, auth; and the stage machine."""

from __future__ import annotations

from services.lifecycle.models import Account, StageChange, infra
from shared.testing.helpers import TEST_API_KEYS
from tests.lifecycle.conftest import HTTP_ONLY, assert_problem, count_rows, outbox_events

RO = next(t for t, s in TEST_API_KEYS.items() if s == ["lifecycle:read"])
RW = next(t for t, s in TEST_API_KEYS.items() if s == ["lifecycle:read", "lifecycle:write"])
NONE = next(t for t, s in TEST_API_KEYS.items() if s == [])

ACCOUNT = {"id": "globex", "name": "Globex", "segment": "mid_market", "owner": "csm.max@vendor.example",
           "seats": 40, "arr": "36000", "currency": "usd", "contract_start": "2026-02-01",
           "renewal_date": "2027-02-01"}


async def test_create_read_list_update(service) -> None:
    async with service("lifecycle", **HTTP_ONLY) as svc:
        c = svc.client
        r = await c.post("/v1/accounts", json=ACCOUNT, headers={"Idempotency-Key": "k1"})
        assert r.status_code == 201, r.text
        acc = r.json()
        assert acc["stage"] == "onboarding" and acc["arr"] == "36000.00" and acc["currency"] == "USD"
        assert acc["onboarding"]["tasks_total"] == 5 and acc["onboarding"]["planned_go_live"] == "2026-05-02"
        assert acc["health"] is None
        # A retry with the same key returns the first result; a new create of the id is 409.
        again = await c.post("/v1/accounts", json=ACCOUNT, headers={"Idempotency-Key": "k1"})
        assert again.status_code == 201 and again.json() == acc
        assert_problem(await c.post("/v1/accounts", json=ACCOUNT), 409)
        created = await outbox_events(svc, "postsales.account.created")
        assert len(created) == 1
        assert (created[0]["data"]["arr"], created[0]["data"]["currency"], created[0]["subject"]) == (
            "36000.00", "USD", "globex")

        # Invalid input is a 422 problem, never a write.
        for bad in ({**ACCOUNT, "id": "x1", "arr": "12.345"}, {**ACCOUNT, "id": "x2", "currency": None},
                    {**ACCOUNT, "id": "x3", "renewal_date": "2025-01-01"}, {**ACCOUNT, "id": "x4", "stage": "gone"},
                    {**ACCOUNT, "id": "x5", "stage": "churned"}, {**ACCOUNT, "id": "x6", "seats": -1}):
            assert_problem(await c.post("/v1/accounts", json=bad), 422)
        assert await count_rows(svc, Account) == 1

        await c.post("/v1/accounts", json={"id": "initech", "name": "Initech", "segment": "smb",
                                           "stage": "adoption", "renewal_date": "2026-12-01"})
        await c.post("/v1/accounts", json={"id": "umbrella", "name": "Umbrella", "segment": "smb",
                                           "owner": "csm.max@vendor.example"})
        ids = lambda r: [a["id"] for a in r.json()["items"]]  # noqa: E731
        assert ids(await c.get("/v1/accounts")) == ["umbrella", "initech", "globex"]
        assert ids(await c.get("/v1/accounts", params={"segment": "smb"})) == ["umbrella", "initech"]
        assert ids(await c.get("/v1/accounts", params={"stage": "adoption"})) == ["initech"]
        assert ids(await c.get("/v1/accounts", params={"owner": "csm.max@vendor.example"})) == ["umbrella", "globex"]
        initech = (await c.get("/v1/accounts/initech")).json()
        assert initech["onboarding"] is None  # imported in adoption: no plan
        # Pagination walks every account exactly once.
        seen, cursor = [], None
        while True:
            page = (await c.get("/v1/accounts", params={"limit": 2, **({"cursor": cursor} if cursor else {})})).json()
            seen += [a["id"] for a in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert seen == ["umbrella", "initech", "globex"]
        assert_problem(await c.get("/v1/accounts", params={"cursor": "garbage!"}), 422)

        # PATCH emits account.updated with what changed; stage is not patchable.
        r = await c.patch("/v1/accounts/globex", json={"owner": "csm.zoe@vendor.example", "renewal_date": "2027-03-01",
                                                        "arr": "40000.00"})
        assert r.status_code == 200, r.text
        assert r.json()["owner"] == "csm.zoe@vendor.example" and r.json()["arr"] == "40000.00"
        updated = await outbox_events(svc, "postsales.account.updated")
        assert len(updated) == 1
        assert sorted(updated[0]["data"]["changed"]) == ["arr", "owner", "renewal_date"]
        assert updated[0]["data"]["renewal_date"] == "2027-03-01" and updated[0]["data"]["arr"] == "40000.00"
        # The same values again change nothing and emit nothing.
        assert (await c.patch("/v1/accounts/globex", json={"owner": "csm.zoe@vendor.example"})).status_code == 200
        assert len(await outbox_events(svc, "postsales.account.updated")) == 1
        body = assert_problem(await c.patch("/v1/accounts/globex", json={"stage": "adoption"}), 422)
        assert "transitions" in body["detail"]
        assert_problem(await c.patch("/v1/accounts/globex", json={"renewal_date": "2026-01-01"}), 422)
        assert_problem(await c.patch("/v1/accounts/globex", json={"currency": None}), 422)
        assert_problem(await c.patch("/v1/accounts/nope", json={"owner": "x"}), 404)
        assert_problem(await c.get("/v1/accounts/nope"), 404)
        assert (await c.get("/v1/accounts/globex")).json()["stage"] == "onboarding"

        # Scopes: read-only can read but not write; no scope or no token is refused.
        assert (await svc.client_for(RO).get("/v1/accounts/globex")).status_code == 200
        assert_problem(await svc.client_for(RO).post("/v1/accounts", json={**ACCOUNT, "id": "ro"}), 403)
        assert_problem(await svc.client_for(RO).post("/v1/accounts/globex/transitions", json={"to": "adoption"}),
                       403)
        assert_problem(await svc.client_for(NONE).get("/v1/accounts"), 403)
        assert_problem(await svc.client_for(None).get("/v1/accounts"), 401)
        assert (await svc.client_for(RW).post("/v1/accounts", json={**ACCOUNT, "id": "rw"})).status_code == 201


async def test_stage_machine_allows_the_designed_paths_and_refuses_the_rest(service) -> None:
    async with service("lifecycle", **HTTP_ONLY) as svc:
        c = svc.client
        assert (await c.post("/v1/accounts", json=ACCOUNT)).status_code == 201

        async def move(to: str, reason: str | None = None) -> dict:
            r = await c.post("/v1/accounts/globex/transitions", json={"to": to, "reason": reason,
                                                                       "actor": "csm.max@vendor.example"})
            assert r.status_code == 201, r.text
            return r.json()

        async def refused(to: str, status: int, account: str = "globex") -> dict:
            history = await count_rows(svc, StageChange)
            outbox = await count_rows(svc, infra.outbox)
            before = (await c.get(f"/v1/accounts/{account}")).json() if account == "globex" else None
            body = assert_problem(await c.post(f"/v1/accounts/{account}/transitions",
                                               json={"to": to, "reason": "nope"}), status)
            # Nothing written: no history row, no event, same stage.
            assert await count_rows(svc, StageChange) == history
            assert await count_rows(svc, infra.outbox) == outbox
            if before is not None:
                assert (await c.get(f"/v1/accounts/{account}")).json() == before
            return body

        for to in ("expansion", "renewal", "onboarding"):
            body = await refused(to, 409)
            assert body["allowed"] == ["adoption", "churned"]
        await refused("paused", 422)
        await refused("adoption", 404, account="ghost")

        first = await move("adoption", "go-live done")
        # A retried request (same Idempotency-Key) answers with the first result instead of a 409.
        retry = {"to": "adoption", "reason": "go-live done", "actor": "csm.max@vendor.example"}
        r1 = await c.post("/v1/accounts/globex/transitions", json={**retry, "to": "expansion"},
                          headers={"Idempotency-Key": "t-1"})
        r2 = await c.post("/v1/accounts/globex/transitions", json={**retry, "to": "expansion"},
                          headers={"Idempotency-Key": "t-1"})
        assert r1.status_code == r2.status_code == 201 and r1.json() == r2.json()
        await move("adoption")
        assert first["from"] == "onboarding" and first["to"] == "adoption"
        assert first["actor"] == "csm.max@vendor.example" and first["reason"] == "go-live done" and first["at"]
        await refused("adoption", 409)
        await refused("onboarding", 409)
        await move("renewal", "renewal quarter")
        await refused("expansion", 409)
        await move("adoption", "renewed")
        await move("expansion")
        await move("renewal")
        await move("churned", "budget cut")
        for to in ("adoption", "renewal", "churned", "onboarding", "expansion"):
            assert (await refused(to, 409))["allowed"] == []

        # Each transition is in the history (newest first) and on the bus via the outbox.
        history = (await c.get("/v1/accounts/globex/transitions")).json()["items"]
        path = [(h["from"], h["to"]) for h in reversed(history)]
        assert path == [(None, "onboarding"), ("onboarding", "adoption"), ("adoption", "expansion"),
                        ("expansion", "adoption"), ("adoption", "renewal"), ("renewal", "adoption"),
                        ("adoption", "expansion"), ("expansion", "renewal"), ("renewal", "churned")]
        events = await outbox_events(svc, "postsales.account.stage_changed")
        assert [(e["data"]["from"], e["data"]["to"]) for e in events] == path[1:]
        assert events[-1]["data"]["reason"] == "budget cut" and events[-1]["subject"] == "globex"
        assert (await c.get("/v1/accounts/globex")).json()["stage"] == "churned"


async def test_openapi_documents_every_route_with_auth_and_examples(service) -> None:
    async with service("lifecycle", **HTTP_ONLY) as svc:
        doc = (await svc.client.get("/openapi.json")).json()
        ops = {(m.upper(), p): op for p, item in doc["paths"].items() for m, op in item.items() if p.startswith("/v1")}
        for route in [("GET", "/v1/accounts"), ("POST", "/v1/accounts"), ("GET", "/v1/accounts/{account_id}"),
                      ("PATCH", "/v1/accounts/{account_id}"), ("POST", "/v1/accounts/{account_id}/transitions"),
                      ("GET", "/v1/accounts/{account_id}/tasks"), ("POST", "/v1/accounts/{account_id}/tasks"),
                      ("PATCH", "/v1/accounts/{account_id}/tasks/{task_id}"),
                      ("POST", "/v1/accounts/{account_id}/touchpoints"), ("GET", "/v1/accounts/{account_id}/timeline"),
                      ("POST", "/v1/accounts/{account_id}/renewals"), ("GET", "/v1/renewals/upcoming"),
                      ("GET", "/v1/accounts/{account_id}/opportunities"),
                      ("POST", "/v1/accounts/{account_id}/opportunities")]:
            assert route in ops, route
        for route, op in ops.items():
            assert op.get("security") and "401" in op["responses"] and "403" in op["responses"], route
            assert op.get("description"), route
        schemas = doc["components"]["schemas"]
        for name in ("AccountCreate", "AccountOut", "TransitionIn", "TaskOut", "RenewalCreate", "OpportunityCreate",
                     "TouchpointCreate", "TimelineEntryOut"):
            assert schemas[name].get("examples"), name
