"""Churn risk end to end, as processes: a simulated history is imported through the public APIs with
historical times (``sim.load``), the model is trained, ``GET /v1/risk`` lists the at-risk accounts by
ARR at risk, and ``risk.changed`` reaches the notifier (a rule fires, delivered to a real receiver)
and lifecycle (the account's ``risk``). A first scoring pages no rule that asks for a change."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from shared.testing.helpers import ADMIN_TOKEN, eventually
from shared.testing.suite import Suite, WebhookReceiver
from sim import simulate
from sim.load import Urls, load, wait_consumed

pytestmark = pytest.mark.timeout(600)


async def _json(r: httpx.Response, status: int) -> Any:
    assert r.status_code == status, (r.request.method, r.request.url, r.status_code, r.text)
    return r.json()


async def test_history_in_train_worklist_and_risk_changed_reaches_notifier_and_lifecycle(
        suite: Suite, receiver: WebhookReceiver) -> None:
    book = simulate(accounts=36, months=18, seed=1, today=dt.datetime.now(dt.UTC).date(), users_per_account=3,
                    driver_rate=0.5)
    assert len(book.churned) >= 12
    urls = Urls(suite.url("handoff"), suite.url("lifecycle"), suite.url("metrics"), suite.url("notifier"))
    async with suite.client("notifier") as notifier, suite.client("metrics") as metrics, \
            suite.client("lifecycle") as lifecycle:
        channel = await _json(await notifier.post("/v1/channels", json={
            "name": "risk-e2e", "kind": "webhook", "url": receiver.url}), 201)
        await _json(await notifier.post("/v1/rules", json={
            "name": "risk-e2e-at-risk", "event_type": "postsales.risk.changed",
            "conditions": {"data.new_band": {"in": ["medium", "high"]}}, "severity": "warning",
            "channels": [channel["id"]], "group_wait": "0s", "repeat_interval": "24h"}), 201)
        # Pages only on a change of band: the first scoring after an import must not fire it.
        await _json(await notifier.post("/v1/rules", json={
            "name": "risk-e2e-worsened", "event_type": "postsales.risk.changed",
            "conditions": {"data.old_band": {"exists": True}, "data.new_band": {"eq": "high"}},
            "severity": "critical", "channels": [channel["id"]], "group_wait": "0s"}), 201)

        report = await load(book, urls, token=ADMIN_TOKEN)
        assert report.errors == [] and report.accounts_loaded == len(book.accounts)
        assert await wait_consumed(book, urls, ADMIN_TOKEN, timeout=300)

        # Facts landed where they belong in time: a churned renewal is on its date, the account is churned.
        churned = next(a for a in book.churned if a.churn_kind == "renewal")
        acc = await _json(await lifecycle.get(f"/v1/accounts/{churned.id}"), 200)
        assert acc["stage"] == "churned"
        renewals = (await _json(await lifecycle.get(f"/v1/accounts/{churned.id}/renewals"), 200))["items"]
        last = max(renewals, key=lambda r: r["renewal_date"])
        assert last["outcome"] == "churned" and last["renewal_date"] == str(churned.churned_on)
        assert last["recorded_at"][:10] == str(churned.churned_on)

        async def trained() -> Any:
            r = await metrics.post("/v1/risk-model/train", json={})
            return r.json() if r.status_code == 201 else None

        # The facts consumer may still be folding the last lifecycle events in: retry until it trains.
        model = await eventually(trained, timeout=240, interval=3, message="risk model trained")
        assert model["backtest"]["n_test"] > 0 and model["backtest"]["baseline"]["auc"] is not None

        items = (await _json(await metrics.get("/v1/risk", params={"limit": 500}), 200))["items"]
        active = {a.id for a in book.accounts if a.churned_on is None}
        assert {i["account_id"] for i in items} == active
        at_risk = [i["arr_at_risk"] for i in items]
        assert at_risk == sorted(at_risk, reverse=True) and at_risk[0] > 0
        flagged = [i for i in items if i["band"] in ("medium", "high")]
        assert flagged, items[:5]

        # risk.changed reaches the notifier: the rule fires and the receiver gets it for a flagged account.
        def delivered() -> list[Any]:
            return receiver.matching(lambda m: "risk-e2e-at-risk" in m.body.decode(errors="replace"))

        async def some() -> list[Any] | None:
            got = delivered()
            return got if got else None

        await eventually(some, timeout=120, interval=0.5, message="risk alert delivered")
        alerts = (await _json(await notifier.get("/v1/alerts", params={"limit": 500}), 200))["items"]
        fired = {a["subject"] for a in alerts if a["rule_name"] == "risk-e2e-at-risk"}
        assert fired and fired <= {i["account_id"] for i in flagged}
        assert all(a["last_event"]["data"]["initial"] is True for a in alerts if a["rule_name"] == "risk-e2e-at-risk")
        assert [a for a in alerts if a["rule_name"] == "risk-e2e-worsened"] == []

        # ... and lifecycle: every scored account carries its band and probability.
        top = items[0]

        async def copied() -> Any:
            body = (await lifecycle.get(f"/v1/accounts/{top['account_id']}")).json()
            return body if body.get("risk") else None

        acc = await eventually(copied, timeout=120, interval=0.5, message="lifecycle risk copy")
        assert acc["risk"]["band"] == top["band"] and acc["risk"]["probability"] == top["probability"]
        listed = (await _json(await lifecycle.get("/v1/accounts", params={"limit": 500}), 200))["items"]
        assert sum(1 for a in listed if a["risk"]) >= 1
