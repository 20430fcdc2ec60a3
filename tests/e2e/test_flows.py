"""The suite as its users run it: four processes, one broker, real databases, a real webhook receiver,
driven only over HTTP and Kafka.

One test walks the whole story (a module starts one suite per xdist worker, so one rich test is
cheaper than several): a handoff with commitments is accepted, lifecycle onboards the account with a
task per commitment, completing a task delivers the commitment, usage arrives over HTTP and Kafka
with duplicates, surveys move NPS and health, and a detractor and a red health reach the receiver,
signed, once each.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from shared.testing.helpers import KafkaProbe, eventually
from shared.testing.suite import Suite, WebhookReceiver
from tests.e2e.support import USAGE_TOPIC, doc, expected_usage, usage_event, usage_rows

pytestmark = pytest.mark.timeout(600)

# Sentiment-heavy weights make the band follow the surveys whatever the other inputs are.
HEALTH_MODEL = {"weights": {"usage": 5, "engagement": 5, "sentiment": 80, "support": 5, "commitments": 5,
                            "renewal_proximity": 5},
                "bands": {"green": 70, "yellow": 40}}


async def _json(r: httpx.Response, status: int) -> Any:
    assert r.status_code == status, (r.request.method, r.request.url, r.status_code, r.text)
    return r.json()


async def _setup_notifier(notifier: httpx.AsyncClient, receiver: WebhookReceiver) -> str:
    """A default webhook channel at the receiver, and the built-in rules made to notify at once."""
    created = await _json(await notifier.post("/v1/channels", json={
        "name": "e2e-receiver", "kind": "webhook", "url": receiver.url, "default": True}), 201)
    assert created["secret"].startswith("whsec_")
    listed = await _json(await notifier.get("/v1/channels"), 200)
    assert all("secret" not in c or c["secret"] is None for c in listed["items"]), "secret shown after creation"
    rules = {r["name"]: r for r in (await _json(await notifier.get("/v1/rules", params={"limit": 500}), 200))["items"]}
    for name in ("nps-detractor", "health-turned-red"):
        rule = rules[name]
        assert rule["builtin"] and rule["channels"] == []
        body = {k: v for k, v in rule.items() if k not in ("id", "builtin", "created_at", "updated_at")}
        await _json(await notifier.put(f"/v1/rules/{rule['id']}", json=body | {"group_wait": "0s"}), 200)
    return str(created["secret"])


async def _handoff_to_onboarding(handoff: httpx.AsyncClient, lifecycle: httpx.AsyncClient, account: str,
                                 segment: str) -> tuple[str, list[dict[str, Any]]]:
    today = dt.datetime.now(dt.UTC).date()
    body = {
        "account": {"external_id": account, "name": f"Acme {account}", "segment": segment, "plan": "Business",
                    "seats": 100, "arr": "120000.00", "currency": "USD", "contract_start": today.isoformat(),
                    "renewal_date": (today + dt.timedelta(days=300)).isoformat()},
        "crm_opportunity_id": f"OPP-{account}",
        "goals": ["All sites live within 60 days"],
        "commitments": [
            {"title": "SSO with Okta", "kind": "integration", "due_date": (today + dt.timedelta(days=30)).isoformat()},
            {"title": "Admin training", "kind": "training", "due_date": (today + dt.timedelta(days=45)).isoformat()},
        ],
        "stakeholders": [{"name": "Hanako Yamada", "role": "VP Operations", "champion": True}],
        "presales_owner": "ae@vendor.example", "postsales_owner": "csm@vendor.example",
    }
    h = await _json(await handoff.post("/v1/handoffs", json=body, headers={"Idempotency-Key": account}), 201)
    assert h["status"] == "draft" and h["missing"] == [], h["missing"]
    again = await _json(await handoff.post("/v1/handoffs", json=body, headers={"Idempotency-Key": account}), 201)
    assert again["id"] == h["id"], "a retried create made a second handoff"
    assert (await _json(await handoff.post(f"/v1/handoffs/{h['id']}/submit", json={}), 200))["status"] == "submitted"
    accepted = await _json(await handoff.post(f"/v1/handoffs/{h['id']}/accept", json={"by": "csm@vendor.example"}),
                           200)
    assert accepted["status"] == "accepted"
    commitments = accepted["commitments"]

    async def onboarded() -> dict[str, Any] | None:
        r = await lifecycle.get(f"/v1/accounts/{account}")
        return r.json() if r.status_code == 200 else None

    acct = await eventually(onboarded, timeout=60, message="account created from the accepted handoff")
    assert acct["stage"] == "onboarding" and acct["handoff_id"] == h["id"] and acct["seats"] == 100
    tasks = (await _json(await lifecycle.get(f"/v1/accounts/{account}/tasks",
                                             params={"kind": "commitment"}), 200))["items"]
    assert sorted(t["commitment_id"] for t in tasks) == sorted(c["id"] for c in commitments)
    assert all(t["status"] == "open" for t in tasks)
    return h["id"], tasks


async def _deliver_commitment(handoff: httpx.AsyncClient, lifecycle: httpx.AsyncClient, account: str,
                              handoff_id: str, task: dict[str, Any]) -> None:
    await _json(await lifecycle.patch(f"/v1/accounts/{account}/tasks/{task['id']}", json={"status": "done"}), 200)

    async def delivered() -> dict[str, str] | None:
        items = (await _json(await handoff.get(f"/v1/handoffs/{handoff_id}/commitments"), 200))["items"]
        status = {c["id"]: c["status"] for c in items}
        return status if status[task["commitment_id"]] == "delivered" else None

    status = await eventually(delivered, timeout=60, message="commitment delivered from the completed task")
    assert sorted(status.values()) == ["delivered", "open"], status


async def _usage(metrics: httpx.AsyncClient, probe: KafkaProbe, account: str) -> None:
    now = dt.datetime.now(dt.UTC)
    late = now - dt.timedelta(days=1, hours=2)
    users = [f"user-{i}" for i in range(5)]
    over_http = [usage_event(account, f"web-{i}", user=users[i % 5], quantity=1 + i % 3,
                             type="usage.feature_used" if i % 2 else "usage.login",
                             feature="reports" if i % 2 else None) for i in range(40)]
    over_http.append(usage_event(account, "web-late", user=users[0], at=late, quantity=4))
    on_topic = [usage_event(account, f"mob-{i}", user=users[i % 3], source="/product/mobile", feature="export")
                for i in range(30)]
    # Duplicates: inside one request, a whole request retried, the same events on both paths.
    first = [doc(e) for e in over_http] + [doc(over_http[0]), doc(over_http[1])]
    r1 = await _json(await metrics.post("/v1/events", json=first), 202)
    assert r1 == {"accepted": len(first), "rejected": []}
    await _json(await metrics.post("/v1/events", json=first), 202)
    await probe.publish(USAGE_TOPIC, [*on_topic, *on_topic[:10], *over_http[:10]])
    await _json(await metrics.post("/v1/events", json=[doc(e) for e in on_topic[20:]]), 202)

    want = expected_usage([*over_http, *on_topic])[account]
    start, end = late.date(), now.date()

    async def exact() -> bool:
        got = await usage_rows(metrics, account, start, end)
        assert got == want, got
        return True

    await eventually(exact, timeout=60, message="usage rollups equal the distinct events")
    assert sum(r["event_count"] for r in want.values()) == 71


async def _surveys_move_nps_and_health(metrics: httpx.AsyncClient, account: str, segment: str) -> None:
    await _json(await metrics.put("/v1/health-model", json=HEALTH_MODEL), 200)

    async def kpis() -> dict[str, Any]:
        return dict(await _json(await metrics.get("/v1/kpis", params={"segment": segment}), 200))

    async def health(band: str, sentiment: float) -> dict[str, Any] | None:
        r = await metrics.get(f"/v1/accounts/{account}/health")
        if r.status_code != 200:
            return None
        h = r.json()
        value = {c["name"]: c for c in h["components"]}["sentiment"]["value"]
        return h if h["band"] == band and value == sentiment else None

    await _json(await metrics.post("/v1/surveys", json={"account_id": account, "kind": "nps", "score": 10,
                                                         "respondent": "cto@acme.example"}), 202)

    async def nps_is(value: float, denominator: int) -> bool:
        nps = (await kpis())["nps"]
        return nps["value"] == value and nps["denominator"] == denominator

    await eventually(lambda: nps_is(100.0, 1), timeout=60, message="NPS from the promoter")
    green = await eventually(lambda: health("green", 100.0), timeout=60, message="green health after a promoter")
    for i, score in enumerate((0, 2, 5)):
        await _json(await metrics.post("/v1/surveys", json={"account_id": account, "kind": "nps", "score": score,
                                                             "respondent": f"user{i}@acme.example"}), 202)
    await eventually(lambda: nps_is(-50.0, 4), timeout=60, message="NPS after three detractors")
    # NPS -50 maps to sentiment 25: every survey counted, the band red.
    red = await eventually(lambda: health("red", 25.0), timeout=60, message="red health after detractors")
    assert red["score"] < green["score"]
    print(f"\nflow: NPS 100 -> -50; health {green['score']} ({green['band']}) -> {red['score']} ({red['band']})")


async def _alerts_reach_receiver(notifier: httpx.AsyncClient, receiver: WebhookReceiver, secret: str,
                                 account: str) -> None:
    def for_account() -> list[Any]:
        return receiver.matching(lambda r: r.json()["data"]["subject"] == account)

    async def both() -> bool:
        return {r.json()["data"]["rule"] for r in for_account()} == {"nps-detractor", "health-turned-red"}

    await eventually(both, timeout=60, message="both alerts delivered")
    await asyncio.sleep(3)  # anything extra (a repeat, a retry of a delivered message) would arrive by now
    got = for_account()
    assert sorted(r.json()["data"]["rule"] for r in got) == ["health-turned-red", "nps-detractor"], \
        [r.json()["data"]["rule"] for r in got]
    assert len(receiver.received) == 2, "the receiver got deliveries nobody expected"
    hook = Webhook(secret)
    for r in got:
        assert r.json()["type"] == "postsales.alert.fired"
        hook.verify(r.body, r.headers)  # raises on a bad signature
    firing = (await _json(await notifier.get("/v1/alerts", params={"status": "firing"}), 200))["items"]
    mine = {a["rule_name"]: a for a in firing if a["subject"] == account}
    assert set(mine) == {"nps-detractor", "health-turned-red"}
    assert mine["nps-detractor"]["event_count"] == 3, "three detractors are one alert"


async def test_handoff_to_alerts_end_to_end(suite: Suite, receiver: WebhookReceiver) -> None:
    account = f"acme-{uuid.uuid4().hex[:8]}"
    segment = f"seg-{account}"
    probe = KafkaProbe(suite.bootstrap, suite.prefix)
    async with suite.client("handoff") as handoff, suite.client("lifecycle") as lifecycle, \
            suite.client("metrics") as metrics, suite.client("notifier") as notifier:
        secret = await _setup_notifier(notifier, receiver)
        handoff_id, tasks = await _handoff_to_onboarding(handoff, lifecycle, account, segment)
        await _deliver_commitment(handoff, lifecycle, account, handoff_id, tasks[0])
        await _usage(metrics, probe, account)
        await _surveys_move_nps_and_health(metrics, account, segment)
        await _alerts_reach_receiver(notifier, receiver, secret, account)
