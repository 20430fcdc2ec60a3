from __future__ import annotations

from decimal import Decimal

from shared.events.registry import HANDOFF_TOPIC, HandoffPayload
from shared.testing import eventually
from tests.handoff.conftest import accepted, assert_problem, complete_body, create, minimal_body, outbox_types, snapshot


async def test_full_flow_publishes_submitted_and_accepted_once_with_full_payload(service, kafka) -> None:
    async with service("handoff", run_consumers=False) as svc:
        body = complete_body()
        r1 = await svc.client.post("/v1/handoffs", json=body, headers={"Idempotency-Key": "k-1"})
        assert r1.status_code == 201, r1.text
        h = r1.json()
        assert h["status"] == "draft" and h["completeness"] == 1.0 and h["missing"] == []
        assert [c["status"] for c in h["commitments"]] == ["open", "open"]
        # A retried create returns the first result and creates nothing new.
        r2 = await svc.client.post("/v1/handoffs", json=body, headers={"Idempotency-Key": "k-1"})
        assert r2.status_code == 201 and r2.json()["id"] == h["id"]
        assert (await snapshot(svc))["handoffs"] == 1

        r = await svc.client.post(f"/v1/handoffs/{h['id']}/submit", json={"by": "ae.sato@example.com"})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "submitted"
        r = await svc.client.post(f"/v1/handoffs/{h['id']}/accept", json={"by": "csm.kato@example.com"})
        assert r.status_code == 200, r.text
        done = r.json()
        assert done["status"] == "accepted" and done["accepted_by"] == "csm.kato@example.com"
        assert [(s["from_status"], s["to_status"], s["by"]) for s in done["history"]] == [
            (None, "draft", "ae.sato@example.com"),
            ("draft", "submitted", "ae.sato@example.com"),
            ("submitted", "accepted", "csm.kato@example.com"),
        ]
        # Accepting twice is refused and publishes nothing more.
        r = await svc.client.post(f"/v1/handoffs/{h['id']}/accept", json={"by": "x"})
        assert_problem(r, 409, "accepted")

        async def two_events() -> list:
            evs = await kafka.events(HANDOFF_TOPIC, settle=0.3)
            return evs if len(evs) >= 2 else []

        events = await eventually(two_events)
        events = await kafka.events(HANDOFF_TOPIC, settle=1.0)
        assert sorted(e.type for e in events) == ["postsales.handoff.accepted", "postsales.handoff.submitted"]
        account_id = body["account"]["external_id"]
        for e in events:
            assert e.subject == account_id and e.source == "/services/handoff"
            p = HandoffPayload.model_validate(e.data)
            assert p.handoff_id == h["id"] and p.crm_opportunity_id == body["crm_opportunity_id"]
            assert p.account.name == "Acme Corp" and p.account.seats == 250
            assert p.account.arr == Decimal("120000.50") and e.data["account"]["arr"] == "120000.50"
            assert e.data["account"]["renewal_date"] == "2027-12-01" and p.account.currency == "USD"
            assert p.account.segment == "enterprise" and p.account.plan == "Business"
            assert p.presales_owner == "ae.sato@example.com" and p.postsales_owner == "csm.kato@example.com"
            assert p.goals == body["goals"]
            assert [(c.id, c.title, c.kind, c.owner) for c in p.commitments] == [
                (c["id"], c["title"], c["kind"], c["owner"]) for c in h["commitments"]]
            assert e.data["commitments"][0]["due_date"] == "2030-01-15"
        by_type = {e.type: e for e in events}
        assert by_type["postsales.handoff.accepted"].data["status"] == "accepted"
        assert by_type["postsales.handoff.accepted"].data["by"] == "csm.kato@example.com"
        assert by_type["postsales.handoff.submitted"].data["status"] == "submitted"


async def test_incomplete_submit_is_422_naming_each_gap_and_writes_nothing(service) -> None:
    async with service("handoff", run_consumers=False, run_relay=False) as svc:
        h = await create(svc, minimal_body())
        assert h["missing"] == ["account.renewal_date", "account.arr", "goals", "commitments",
                                "stakeholders.champion", "postsales_owner"]
        assert h["completeness"] == round(1 / 7, 4)
        before = await snapshot(svc)
        r = await svc.client.post(f"/v1/handoffs/{h['id']}/submit")
        problem = assert_problem(r, 422, "incomplete", "account.renewal_date", "postsales_owner")
        assert problem["missing"] == h["missing"]
        assert [e["loc"] for e in problem["errors"]] == [
            ["body", "account", "renewal_date"], ["body", "account", "arr"], ["body", "goals"],
            ["body", "commitments"], ["body", "stakeholders", "champion"], ["body", "postsales_owner"]]
        assert all(e["msg"] for e in problem["errors"])
        assert await snapshot(svc) == before

        # Fill the gaps step by step; completeness follows, and "no commitments" is an explicit answer.
        r = await svc.client.patch(f"/v1/handoffs/{h['id']}", json={
            "account": {"renewal_date": "2027-06-30", "arr": "5000"}, "goals": ["faster month-end close"]})
        assert r.status_code == 200, r.text
        assert r.json()["account"]["name"] == "Minimal Inc"  # untouched fields stay
        assert r.json()["missing"] == ["commitments", "stakeholders.champion", "postsales_owner"]
        r = await svc.client.patch(f"/v1/handoffs/{h['id']}", json={
            "no_commitments": True, "postsales_owner": "csm@example.com",
            "stakeholders": [{"name": "Ken", "role": "Champion, IT lead"}]})
        assert r.json()["missing"] == [] and r.json()["completeness"] == 1.0
        r = await svc.client.post(f"/v1/handoffs/{h['id']}/submit")
        assert r.status_code == 200 and r.json()["status"] == "submitted"
        assert await outbox_types(svc) == ["postsales.handoff.submitted"]


async def test_configured_checklist_is_applied(service) -> None:
    async with service("handoff", run_consumers=False, run_relay=False,
                       completeness_checklist='["account.name", "presales_owner", "risks"]') as svc:
        h = await create(svc, minimal_body(presales_owner="ae@example.com"))
        assert h["missing"] == ["risks"] and h["completeness"] == round(2 / 3, 4)
        r = await svc.client.post(f"/v1/handoffs/{h['id']}/submit")
        assert_problem(r, 422, "risks")


async def test_refused_requests_are_problems_and_write_nothing(service) -> None:
    async with service("handoff", run_consumers=False, run_relay=False) as svc:
        body = complete_body()
        h = await create(svc, body)
        before = await snapshot(svc)

        dup = complete_body(crm_opportunity_id=body["crm_opportunity_id"])
        problem = assert_problem(await svc.client.post("/v1/handoffs", json=dup), 409, body["crm_opportunity_id"])
        assert problem["existing_handoff_id"] == h["id"]
        for verb in ("accept", "return"):
            r = await svc.client.post(f"/v1/handoffs/{h['id']}/{verb}", json={"reason": "x"})
            assert_problem(r, 409, "draft", f"cannot {verb}")
        assert_problem(await svc.client.post(f"/v1/handoffs/{h['id']}/return", json={}), 422)
        bad_kind = complete_body(commitments=[{"title": "x", "kind": "magic"}])
        problem = assert_problem(await svc.client.post("/v1/handoffs", json=bad_kind), 422)
        assert problem["errors"][0]["loc"][:3] == ["body", "commitments", 0]
        bad_dates = complete_body()
        bad_dates["account"]["renewal_date"] = "2026-01-01"
        assert_problem(await svc.client.post("/v1/handoffs", json=bad_dates), 422, "renewal_date")
        no_name = minimal_body()
        del no_name["account"]["name"]
        assert_problem(await svc.client.post("/v1/handoffs", json=no_name), 422, "account.name")
        r = await svc.client.patch(f"/v1/handoffs/{h['id']}", json={"account": {"name": None}})
        assert_problem(r, 422, "cannot be null")
        r = await svc.client.patch(f"/v1/handoffs/{h['id']}", json={"commitments": [
            {"id": "00000000-0000-0000-0000-000000000000", "title": "ghost"}]})
        assert_problem(r, 422, "not part of handoff")
        r = await svc.client.patch(f"/v1/handoffs/{h['id']}", json={"no_commitments": True})
        assert_problem(r, 422, "no_commitments")
        # Same Idempotency-Key, different body.
        assert (await svc.client.post("/v1/handoffs", json=complete_body(), headers={"Idempotency-Key": "z"})
                ).status_code == 201
        before = await snapshot(svc)
        r = await svc.client.post("/v1/handoffs", json=complete_body(), headers={"Idempotency-Key": "z"})
        assert_problem(r, 422, "Idempotency-Key")

        missing = "4c1f2a9e-0000-4000-8000-000000000000"
        assert_problem(await svc.client.get(f"/v1/handoffs/{missing}"), 404, missing)
        assert_problem(await svc.client.patch(f"/v1/handoffs/{missing}", json={"goals": []}), 404, missing)
        assert_problem(await svc.client.post(f"/v1/handoffs/{missing}/submit"), 404, missing)
        assert_problem(await svc.client.get(f"/v1/handoffs/{missing}/document"), 404)
        cid = h["commitments"][0]["id"]
        assert_problem(await svc.client.patch(f"/v1/handoffs/{missing}/commitments/{cid}",
                                              json={"status": "delivered"}), 404)
        assert_problem(await svc.client.get(f"/v1/handoffs/{h['id']}/commitments/{missing}"), 404, missing)
        # Commitment statuses are tracked once submitted; a draft's are edited through the handoff.
        r = await svc.client.patch(f"/v1/handoffs/{h['id']}/commitments/{cid}", json={"status": "delivered"})
        assert_problem(r, 409, "draft")

        ro = svc.client_for("test-handoff-ro-token-0123456789")
        assert_problem(await ro.post("/v1/handoffs", json=complete_body()), 403, "handoff:write")
        assert (await ro.get(f"/v1/handoffs/{h['id']}")).status_code == 200
        assert_problem(await svc.client_for(None).get("/v1/handoffs"), 401)
        assert_problem(await svc.client_for("test-no-scope-token-0123456789ab").get("/v1/handoffs"), 403)
        assert await snapshot(svc) == before

        # Once submitted it cannot be edited or submitted again; nothing changes.
        await svc.client.post(f"/v1/handoffs/{h['id']}/submit")
        before = await snapshot(svc)
        r = await svc.client.patch(f"/v1/handoffs/{h['id']}", json={"goals": ["changed"]})
        assert_problem(r, 409, "submitted", "only draft or returned")
        assert_problem(await svc.client.post(f"/v1/handoffs/{h['id']}/submit"), 409, "submitted")
        assert await snapshot(svc) == before


async def test_return_then_edit_and_resubmit(service) -> None:
    async with service("handoff", run_consumers=False, run_relay=False) as svc:
        h = await create(svc)
        await svc.client.post(f"/v1/handoffs/{h['id']}/submit")
        r = await svc.client.post(f"/v1/handoffs/{h['id']}/return",
                                  json={"reason": "renewal date contradicts the order form", "by": "csm"})
        assert r.status_code == 200 and r.json()["status"] == "returned"
        assert r.json()["return_reason"] == "renewal date contradicts the order form"
        keep, drop = h["commitments"]
        r = await svc.client.patch(f"/v1/handoffs/{h['id']}", json={
            "account": {"renewal_date": "2027-11-30"},
            "commitments": [{"id": keep["id"], "title": "SSO with Okta and Azure AD", "kind": "integration"},
                            {"title": "Quarterly business review", "kind": "other"}]})
        assert r.status_code == 200, r.text
        titles = [(c["id"] == keep["id"], c["title"]) for c in r.json()["commitments"]]
        assert titles == [(True, "SSO with Okta and Azure AD"), (False, "Quarterly business review")]
        assert drop["id"] not in {c["id"] for c in r.json()["commitments"]}
        r = await svc.client.post(f"/v1/handoffs/{h['id']}/submit")
        assert r.status_code == 200
        history = [(s["to_status"], s["reason"]) for s in r.json()["history"]]
        assert history == [("draft", None), ("submitted", None),
                           ("returned", "renewal date contradicts the order form"), ("submitted", None)]
        assert await outbox_types(svc) == ["postsales.handoff.submitted", "postsales.handoff.returned",
                                           "postsales.handoff.submitted"]


async def test_list_filters_and_cursor_pagination(service) -> None:
    async with service("handoff", run_consumers=False, run_relay=False) as svc:
        smb = complete_body(presales_owner="ae.one@example.com")
        smb["account"]["segment"] = "smb"
        a = await create(svc, smb)
        b = await accepted(svc, complete_body(postsales_owner="csm.two@example.com"))
        c = await create(svc, minimal_body())
        late = complete_body()
        late["commitments"][0]["due_date"] = "2020-01-01"
        d = await create(svc, late)

        async def ids(query: str) -> list[str]:
            r = await svc.client.get(f"/v1/handoffs?{query}")
            assert r.status_code == 200, r.text
            return [x["id"] for x in r.json()["items"]]

        assert await ids("") == [d["id"], c["id"], b["id"], a["id"]]
        assert await ids("status=accepted") == [b["id"]]
        assert set(await ids("status=draft&status=accepted")) == {a["id"], b["id"], c["id"], d["id"]}
        assert await ids("segment=smb") == [a["id"]]
        assert await ids("owner=ae.one@example.com") == [a["id"]]
        assert await ids("owner=csm.two@example.com") == [b["id"]]
        assert await ids("overdue=true") == [d["id"]]
        assert d["id"] not in await ids("overdue=false")
        assert await ids(f"account_id={c['account']['external_id']}") == [c["id"]]
        assert_problem(await svc.client.get("/v1/handoffs?status=bogus"), 422)
        assert_problem(await svc.client.get("/v1/handoffs?cursor=garbage"), 422, "cursor")

        seen: list[str] = []
        cursor = None
        while True:
            r = await svc.client.get("/v1/handoffs", params={"limit": 3, **({"cursor": cursor} if cursor else {})})
            page = r.json()
            assert len(page["items"]) <= 3
            seen += [x["id"] for x in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [d["id"], c["id"], b["id"], a["id"]]


async def test_concurrent_creates_for_one_opportunity_make_one_handoff(service) -> None:
    import asyncio

    async with service("handoff", run_consumers=False, run_relay=False) as svc:
        body = complete_body()
        bodies = []
        for i in range(5):
            b = complete_body(crm_opportunity_id=body["crm_opportunity_id"])
            b["account"]["name"] = f"Acme {i}"
            bodies.append(b)
        responses = await asyncio.gather(*(svc.client.post("/v1/handoffs", json=b) for b in bodies))
        assert sorted(r.status_code for r in responses) == [201, 409, 409, 409, 409], [r.text for r in responses]
        for r in responses:
            if r.status_code == 409:
                assert_problem(r, 409, body["crm_opportunity_id"])
        state = await snapshot(svc)
        assert state["handoffs"] == 1 and state["commitments"] == 2 and state["transitions"] == 1
