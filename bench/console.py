"""Console render time: the portfolio and the account 360 page with 1,000 accounts.

The four services' answers come from an ``httpx.MockTransport`` (canned JSON shaped like the real
APIs), so this measures the console's own work only (fetching and joining the lists, sorting, templating,
SVG charts), not the services behind it. Real sign-in, session cookie, CSRF and middleware included.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import statistics
import time
from typing import Any

import httpx

from services.console.app import create_app
from services.console.settings import Settings

TOKEN = "bench-console-token-0123456789abcdef"
STAGES = ("onboarding", "adoption", "expansion", "renewal")


def _fake_suite(n: int, seed: int = 7) -> dict[str, httpx.AsyncBaseTransport]:
    rnd = random.Random(seed)
    today = dt.date.today()
    now = dt.datetime.now(dt.UTC)
    accounts = []
    for i in range(n):
        score = rnd.uniform(10, 100)
        accounts.append({
            "id": f"acct-{i:05d}", "name": f"Customer {i:05d}", "segment": rnd.choice(["smb", "mid", "enterprise"]),
            "plan": "scale", "stage": rnd.choice(STAGES), "owner": f"csm{i % 12}@example.com", "seats": 100,
            "arr": f"{rnd.randint(5, 500) * 1000}.00", "currency": "EUR",
            "contract_start": (today - dt.timedelta(days=300)).isoformat(),
            "renewal_date": (today + dt.timedelta(days=rnd.randint(1, 400))).isoformat(),
            "handoff_id": None, "crm_opportunity_id": None, "onboarding": None,
            "health": {"score": round(score, 1), "band": "green" if score >= 70 else "yellow" if score >= 40 else "red",
                       "as_of": now.isoformat()},
            "stage_changed_at": now.isoformat(), "created_at": now.isoformat(), "updated_at": now.isoformat()})
    risks = [{"account_id": a["id"], "probability": round(rnd.random(), 3),
              "band": rnd.choice(["low", "medium", "high"]), "arr": a["arr"], "renewal_date": a["renewal_date"],
              "top_driver": "usage_trend_30d"} for a in accounts]
    components = [{"name": c, "status": "known", "value": rnd.uniform(0, 100), "weight": w,
                   "configured_weight": w * 100, "contribution": rnd.uniform(0, 30), "inputs": {},
                   "explanation": f"{c} explained"}
                  for c, w in (("usage", .3), ("engagement", .15), ("sentiment", .2), ("support", .15),
                               ("commitments", .1), ("renewal_proximity", .1))]

    def page(items: list[Any], request: httpx.Request) -> httpx.Response:
        limit = int(request.url.params.get("limit", 50))
        start = int(request.url.params.get("cursor") or 0)
        nxt = str(start + limit) if start + limit < len(items) else None
        return httpx.Response(200, json={"items": items[start:start + limit], "next_cursor": nxt})

    def lifecycle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/v1/accounts":
            return page(accounts, request)
        m = re.fullmatch(r"/v1/accounts/([^/]+)(/.*)?", path)
        if not m:
            return httpx.Response(404, json={"detail": f"no route for GET {path}"})
        acct = accounts[int(m.group(1).split("-")[1]) % n]
        rest = m.group(2) or ""
        if rest == "":
            return httpx.Response(200, json=acct)
        if rest == "/tasks":
            return page([{"id": f"t{k}", "account_id": acct["id"], "kind": "task", "milestone": None,
                          "title": f"Task {k}", "description": None, "status": "open", "owner": acct["owner"],
                          "due_date": (today + dt.timedelta(days=k - 5)).isoformat(), "commitment_id": None,
                          "handoff_id": None, "overdue": k < 5, "completed_at": None, "created_at": now.isoformat(),
                          "updated_at": now.isoformat()} for k in range(12)], request)
        if rest == "/timeline":
            kind = request.url.params.get("type")
            return page([{"id": k, "type": kind or "postsales.touchpoint.logged", "summary": f"Event {k}",
                          "actor": "csm", "event_id": None,
                          "occurred_at": (now - dt.timedelta(days=k * 3)).isoformat(),
                          "data": {"new_score": 40 + (k * 7) % 50}} for k in range(30)], request)
        if rest == "/playbook-runs":
            return page([{"id": "r1", "playbook_id": "p1", "status": "active", "task_ids": ["t1"],
                          "started_at": now.isoformat(), "ended_at": None}], request)
        return httpx.Response(404, json={"detail": f"no route for GET {path}"})

    def metrics(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/v1/risk":
            return page(risks, request)
        if path.endswith("/health"):
            return httpx.Response(200, json={"account_id": "x", "score": 64.2, "band": "yellow", "coverage": 0.9,
                                             "components": components, "computed_at": now.isoformat(),
                                             "as_of": now.isoformat(), "model_version": 0, "change": None})
        if path.endswith("/usage"):
            frm = dt.date.fromisoformat(request.url.params["from"])
            days = (today - frm).days + 1
            return httpx.Response(200, json={"items": [
                {"date": (frm + dt.timedelta(days=d)).isoformat(), "events": rnd.randint(0, 300),
                 "active_users": rnd.randint(0, 60), "by_type": {}, "features": {}} for d in range(days)]})
        if path.endswith("/risk"):
            return httpx.Response(200, json={"account_id": "x", "probability": 0.42, "band": "medium",
                                             "horizon_days": 90, "model_version": 3, "as_of": today.isoformat(),
                                             "drivers": [{"name": f"feature_{k}", "value": k,
                                                          "contribution": 0.3 - k * 0.08} for k in range(6)]})
        return httpx.Response(404, json={"detail": f"no route for GET {path}"})

    def handoff(request: httpx.Request) -> httpx.Response:
        return page([{"id": f"c{k}", "title": f"Promise {k}", "kind": "integration", "status": "open",
                      "owner": None, "due_date": today.isoformat(), "overdue": False} for k in range(8)], request)

    def notifier(request: httpx.Request) -> httpx.Response:
        return page([{"id": f"a{k}", "severity": "warning", "status": "firing", "summary": f"Alert {k}",
                      "rule_name": "r", "subject": "x", "event_count": 1, "starts_at": now.isoformat()}
                     for k in range(3)], request)

    return {name: httpx.MockTransport(fn) for name, fn in
            (("lifecycle", lifecycle), ("metrics", metrics), ("handoff", handoff), ("notifier", notifier))}


def _stats(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    return f"median {statistics.median(ordered) * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms   (n={len(ordered)})"


async def run(n_accounts: int = 1000, rounds: int = 40) -> dict[str, list[float]]:
    settings = Settings(session_key="bench-console-session-key-0Zq8vR2mX7pL4wN9",
                        postsales_api_keys={TOKEN: ["admin"]})
    app = create_app(settings, transports=_fake_suite(n_accounts))
    out: dict[str, list[float]] = {"portfolio": [], "account": []}
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://console.bench") as client:
        form = await client.get("/signin")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf
        await client.post("/signin", data={"csrf": csrf.group(1), "token": TOKEN})
        for i in range(rounds + 3):
            t0 = time.perf_counter()
            r = await client.get("/")
            took = time.perf_counter() - t0
            assert r.status_code == 200 and r.text.count('<a href="/accounts/') >= 50, r.status_code
            if i >= 3:  # warm-up
                out["portfolio"].append(took)
        for i in range(rounds + 3):
            t0 = time.perf_counter()
            r = await client.get(f"/accounts/acct-{(i * 37) % n_accounts:05d}", params={"days": 90})
            took = time.perf_counter() - t0
            assert r.status_code == 200 and r.text.count("<svg") >= 5, r.status_code
            if i >= 3:
                out["account"].append(took)
    print(f"\nconsole render, {n_accounts:,} accounts (the four APIs answered by an httpx.MockTransport: "
          "console work only)")
    print(f"  portfolio /  (join, sort, page of 50)          {_stats(out['portfolio'])}")
    print(f"  account 360 (10 API reads, 5 SVG charts, 90 d)  {_stats(out['account'])}")
    return out


if __name__ == "__main__":
    import asyncio

    asyncio.run(run())
