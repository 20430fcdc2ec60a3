"""Renewals, upcoming renewals, opportunities, touchpoints and the timeline over HTTP."""

from __future__ import annotations

import datetime as dt

from services.lifecycle.models import Renewal
from tests.lifecycle.conftest import HTTP_ONLY, assert_problem, count_rows, outbox_events, set_clock

TODAY = dt.date(2026, 11, 1)


async def _create(c, account_id: str, renewal: dt.date | None, stage: str = "adoption", **extra) -> None:
    body = {"id": account_id, "name": account_id.title(), "stage": stage, "arr": "100000", "currency": "EUR",
            "renewal_date": renewal.isoformat() if renewal else None, **extra}
    r = await c.post("/v1/accounts", json=body)
    assert r.status_code == 201, r.text


async def test_renewal_outcomes_and_upcoming(service) -> None:
    async with service("lifecycle", **HTTP_ONLY) as svc:
        c = svc.client
        set_clock(svc, TODAY)
        await _create(c, "soon", TODAY + dt.timedelta(days=20), owner="csm.a@vendor.example")
        await _create(c, "later", TODAY + dt.timedelta(days=80))
        await _create(c, "far", TODAY + dt.timedelta(days=200))
        await _create(c, "past", TODAY - dt.timedelta(days=1))
        await _create(c, "leaving", TODAY + dt.timedelta(days=10))

        async def upcoming(**params) -> list[tuple[str, int]]:
            r = await c.get("/v1/renewals/upcoming", params=params)
            assert r.status_code == 200, r.text
            return [(i["account_id"], i["days_until"]) for i in r.json()["items"]]

        assert await upcoming() == [("leaving", 10), ("soon", 20), ("later", 80)]
        assert await upcoming(within_days=30) == [("leaving", 10), ("soon", 20)]
        assert await upcoming(within_days=365, limit=2) == [("leaving", 10), ("soon", 20)]
        assert_problem(await c.get("/v1/renewals/upcoming", params={"within_days": -1}), 422)
        listed = (await c.get("/v1/accounts", params={"renewal_within_days": 30})).json()["items"]
        assert sorted(a["id"] for a in listed) == ["leaving", "soon"]

        # Renewed from stage renewal: date +1 year, ARR updated, back to adoption.
        assert (await c.post("/v1/accounts/soon/transitions", json={"to": "renewal"})).status_code == 201
        r = await c.post("/v1/accounts/soon/renewals", json={"outcome": "renewed", "arr_after": "110000.00"},
                         headers={"Idempotency-Key": "renew-soon"})
        assert r.status_code == 201, r.text
        rec = r.json()
        assert (rec["arr_before"], rec["arr_after"], rec["currency"]) == ("100000.00", "110000.00", "EUR")
        assert (rec["renewal_date"], rec["next_renewal_date"]) == ("2026-11-21", "2027-11-21")
        replay = await c.post("/v1/accounts/soon/renewals", json={"outcome": "renewed", "arr_after": "110000.00"},
                              headers={"Idempotency-Key": "renew-soon"})
        assert replay.status_code == 201 and replay.json() == rec
        assert await count_rows(svc, Renewal) == 1
        acc = (await c.get("/v1/accounts/soon")).json()
        assert (acc["stage"], acc["renewal_date"], acc["arr"]) == ("adoption", "2027-11-21", "110000.00")
        recorded = await outbox_events(svc, "postsales.renewal.recorded")
        assert [(e["data"]["outcome"], e["data"]["arr_before"], e["data"]["arr_after"], e["data"]["renewal_date"])
                for e in recorded] == [("renewed", "100000.00", "110000.00", "2026-11-21")]
        stage_events = [(e["data"]["from"], e["data"]["to"], e["data"]["reason"])
                        for e in await outbox_events(svc, "postsales.account.stage_changed")]
        assert stage_events == [("adoption", "renewal", None), ("renewal", "adoption", "renewed")]

        # Renewed with an explicit date, staying in adoption.
        r = await c.post("/v1/accounts/later/renewals", json={
            "outcome": "renewed", "arr_before": "100000", "arr_after": "90000", "new_renewal_date": "2028-01-20"})
        assert r.status_code == 201, r.text
        assert (await c.get("/v1/accounts/later")).json()["renewal_date"] == "2028-01-20"

        # Churned moves the account to churned with a stage_changed event.
        r = await c.post("/v1/accounts/leaving/renewals", json={"outcome": "churned", "notes": "went with a rival"})
        assert r.status_code == 201, r.text
        assert r.json()["arr_after"] == "0.00"
        assert (await c.get("/v1/accounts/leaving")).json()["stage"] == "churned"
        last_stage = (await outbox_events(svc, "postsales.account.stage_changed"))[-1]["data"]
        assert (last_stage["from"], last_stage["to"], last_stage["reason"]) == ("adoption", "churned",
                                                                                "went with a rival")
        assert ("leaving", 10) not in await upcoming()

        # Refusals write nothing.
        before = await count_rows(svc, Renewal)
        assert_problem(await c.post("/v1/accounts/leaving/renewals", json={"outcome": "renewed",
                                                                           "arr_after": "1"}), 409)
        assert_problem(await c.post("/v1/accounts/far/renewals", json={"outcome": "renewed"}), 422)
        assert_problem(await c.post("/v1/accounts/far/renewals", json={"outcome": "churned", "arr_after": "5"}), 422)
        assert_problem(await c.post("/v1/accounts/far/renewals", json={
            "outcome": "renewed", "arr_after": "1", "new_renewal_date": "2026-01-01"}), 422)
        assert_problem(await c.post("/v1/accounts/far/renewals", json={"outcome": "extended"}), 422)
        assert_problem(await c.post("/v1/accounts/ghost/renewals", json={"outcome": "churned"}), 404)
        assert await count_rows(svc, Renewal) == before
        history = (await c.get("/v1/accounts/soon/renewals")).json()["items"]
        assert [h["id"] for h in history] == [rec["id"]]


async def test_opportunities_touchpoints_and_timeline(service) -> None:
    async with service("lifecycle", **HTTP_ONLY) as svc:
        c = svc.client
        set_clock(svc, dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC))
        await _create(c, "acme", dt.date(2027, 1, 1), owner="csm.a@vendor.example")

        r = await c.post("/v1/accounts/acme/opportunities", json={"kind": "upsell", "amount": "24000.5",
                                                                 "title": "+100 seats"})
        assert r.status_code == 201, r.text
        opp = r.json()
        assert (opp["amount"], opp["currency"], opp["status"], opp["owner"]) == ("24000.50", "EUR", "open",
                                                                                "csm.a@vendor.example")
        r = await c.patch(f"/v1/accounts/acme/opportunities/{opp['id']}", json={"status": "won"})
        assert r.status_code == 200 and r.json()["status"] == "won" and r.json()["closed_at"], r.text
        assert_problem(await c.patch(f"/v1/accounts/acme/opportunities/{opp['id']}", json={"status": "lost"}), 409)
        assert_problem(await c.patch(f"/v1/accounts/acme/opportunities/{opp['id']}", json={"amount": "1"}), 409)
        assert (await c.patch(f"/v1/accounts/acme/opportunities/{opp['id']}",
                              json={"notes": "signed"})).status_code == 200
        assert_problem(await c.post("/v1/accounts/acme/opportunities", json={"kind": "resell", "amount": "1"}), 422)
        assert_problem(await c.post("/v1/accounts/acme/opportunities", json={"kind": "upsell", "amount": "-1"}), 422)
        assert_problem(await c.patch("/v1/accounts/acme/opportunities/nope", json={"status": "won"}), 404)
        await c.post("/v1/accounts/acme/opportunities", json={"kind": "cross_sell", "amount": "5000",
                                                              "currency": "usd"})
        opps = (await c.get("/v1/accounts/acme/opportunities")).json()["items"]
        assert [(o["kind"], o["currency"]) for o in opps] == [("cross_sell", "USD"), ("upsell", "EUR")]
        assert [o["kind"] for o in (await c.get("/v1/accounts/acme/opportunities",
                                                params={"status": "won"})).json()["items"]] == ["upsell"]
        updates = [(e["data"]["kind"], e["data"]["status"], e["data"]["amount"], e["data"]["previous_status"])
                   for e in await outbox_events(svc, "postsales.opportunity.updated")]
        assert updates == [("upsell", "open", "24000.50", None), ("upsell", "won", "24000.50", "open"),
                           ("upsell", "won", "24000.50", "won"), ("cross_sell", "open", "5000.00", None)]

        for kind, at in (("qbr", "2026-04-10T14:00:00+02:00"), ("check_in", None)):
            r = await c.post("/v1/accounts/acme/touchpoints", json={"kind": kind, "notes": f"{kind} notes",
                                                                   "at": at, "attendees": ["cfo@acme.example"]})
            assert r.status_code == 201, r.text
        assert_problem(await c.post("/v1/accounts/acme/touchpoints", json={"kind": "lunch"}), 422)
        assert_problem(await c.post("/v1/accounts/acme/touchpoints", json={"kind": "qbr",
                                                                          "at": "2026-04-10T14:00:00"}), 422)
        tps = (await c.get("/v1/accounts/acme/touchpoints")).json()["items"]
        assert [(t["kind"], t["at"][:19]) for t in tps] == [("check_in", "2026-05-01T09:00:00"),
                                                           ("qbr", "2026-04-10T12:00:00")]
        logged = await outbox_events(svc, "postsales.touchpoint.logged")
        assert [(e["data"]["kind"], e["data"]["at"][:19]) for e in logged] == [("qbr", "2026-04-10T12:00:00"),
                                                                               ("check_in", "2026-05-01T09:00:00")]

        # The timeline: newest first by when things happened, paged without gaps or repeats.
        await c.post("/v1/accounts/acme/transitions", json={"to": "expansion", "reason": "upsell won"})
        full = (await c.get("/v1/accounts/acme/timeline", params={"limit": 500})).json()["items"]
        types = [e["type"] for e in full]
        assert types[0] == "postsales.account.stage_changed"
        assert types[-1] == "postsales.touchpoint.logged"  # the QBR happened first
        assert types.count("postsales.opportunity.updated") == 4 and "postsales.account.created" in types
        paged, cursor = [], None
        while True:
            page = (await c.get("/v1/accounts/acme/timeline",
                                params={"limit": 3, **({"cursor": cursor} if cursor else {})})).json()
            paged += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert [e["id"] for e in paged] == [e["id"] for e in full]
        only = (await c.get("/v1/accounts/acme/timeline", params={"type": "postsales.touchpoint."})).json()["items"]
        assert len(only) == 2
        assert_problem(await c.get("/v1/accounts/ghost/timeline"), 404)
