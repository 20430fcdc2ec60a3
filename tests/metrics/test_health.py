"""Health scores through the real consumers: explanation, coverage, change, and health.changed once."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from services.metrics.health.service import score_accounts
from services.metrics.models import HealthScore
from services.metrics.usage.envelope import UsageData, UsageEnvelope
from services.metrics.usage.service import apply_usage_batch
from shared.db import utcnow
from shared.events.registry import LIFECYCLE_TOPIC, METRICS_TOPIC, USAGE_TOPIC
from shared.testing import KafkaProbe, RunningService, eventually, make_event
from tests.metrics.conftest import rows

WEIGHTS = {"usage": 30, "engagement": 15, "sentiment": 20, "support": 15, "commitments": 10,
           "renewal_proximity": 10}


async def _health(svc: RunningService) -> dict[str, Any]:
    r = await svc.client.get("/v1/accounts/h1/health")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def _changes(kafka: KafkaProbe, n: int) -> list[Any] | None:
    events = [e for e in await kafka.events(METRICS_TOPIC, settle=0.3) if e.subject == "h1"]
    return events if len(events) >= n else None


async def test_health_is_explained_and_band_changes_emit_once(service: Any, kafka: KafkaProbe) -> None:
    now = utcnow()
    today = now.date()
    facts = [
        make_event("postsales.account.created", "h1", {
            "account_id": "h1", "name": "H1", "seats": 20, "arr": "1000", "segment": "ent",
            "renewal_date": (today + dt.timedelta(days=200)).isoformat()}, time=now - dt.timedelta(hours=2)),
        make_event("postsales.touchpoint.logged", "h1", {"account_id": "h1", "kind": "call",
                                                        "at": (now - dt.timedelta(hours=1)).isoformat()}),
    ]
    usage = [make_event("usage.login", "h1", {"user_id": f"u{i}"}, time=now - dt.timedelta(minutes=5))
             for i in range(8)]
    async with service("metrics", health_interval=0.1) as svc:
        # Usage first: alone (usage and support, 45% of the weight) it gives a score but no band, no event.
        await kafka.publish(USAGE_TOPIC, usage)
        h = await eventually(lambda: _usage_known(svc), timeout=60, interval=0.2, message="usage scored")
        assert h["band"] is None and h["coverage"] == 0.45 and "45%" in h["band_reason"]
        assert "METRICS_HEALTH_MIN_COVERAGE" in h["band_reason"] and h["score"] is not None
        await kafka.publish(LIFECYCLE_TOPIC, facts)

        async def scored(expected: float) -> dict[str, Any] | None:
            h = await _health(svc)
            return h if h["score"] == expected else None

        # usage: 8/20 seats -> 0.8*40 = 32, + 0.2 * trend 100 (8 events now, none before) = 52
        # engagement 100 (1 h ago), support 100 (no ticket), renewal 100 (200 days); sentiment and
        # commitments unknown. Known weight 70 of 100: mean of the known M = (30*52 + 15*100 + 15*100 +
        # 10*100) / 70 = 79.4; the unknown ones count at min(50, M) = 50: (5560 + 30*50) / 100 = 70.6
        h = await eventually(lambda: scored(70.6), timeout=60, interval=0.2, message="first score")
        assert h["band"] == "green" and h["coverage"] == 0.7 and h["band_reason"] is None
        comps = {c["name"]: c for c in h["components"]}
        assert comps["usage"]["value"] == 52.0 and comps["usage"]["inputs"]["active_users"] == 8
        assert comps["usage"]["weight"] == 0.3 and comps["usage"]["contribution"] == 15.6
        for name, weight in (("sentiment", 0.2), ("commitments", 0.1)):
            assert comps[name]["status"] == "unknown" and comps[name]["value"] is None
            assert comps[name]["assumed_value"] == 50 and comps[name]["weight"] == weight
            assert comps[name]["contribution"] == round(weight * 50, 2)
            assert "counted at 50.0" in comps[name]["explanation"]
        assert comps["support"]["value"] == 100 and comps["support"]["status"] == "known"
        assert comps["engagement"]["value"] == 100 and comps["renewal_proximity"]["value"] == 100
        assert round(sum(c["contribution"] for c in h["components"]), 1) == h["score"]  # contributions add up
        assert h["as_of"] is not None and h["model_version"] == 0

        # A detractor: sentiment 0 (NPS -100) joins and can only lower the score:
        # (5560 + 20*0 + 10*50) / 100 = 60.6, yellow
        r = await svc.client.post("/v1/surveys", json={"account_id": "h1", "kind": "nps", "score": 0})
        assert r.status_code == 202
        h = await eventually(lambda: scored(60.6), timeout=30, interval=0.2, message="score after survey")
        assert h["band"] == "yellow" and h["coverage"] == 0.9
        change = h["change"]
        assert change["previous_score"] == 70.6 and change["previous_band"] == "green" and change["delta"] == -10.0
        reasons = {x["name"]: x for x in change["reasons"]}
        assert reasons["sentiment"]["previous_contribution"] == 10.0 and reasons["sentiment"]["contribution"] == 0
        assert change["reasons"][0]["name"] == "sentiment" and "usage" not in reasons  # usage did not move

        # New bands that keep the account yellow: re-scored under the new version, no event.
        r = await svc.client.put("/v1/health-model", json={"weights": WEIGHTS, "bands": {"green": 95, "yellow": 40}})
        assert r.status_code == 200
        h = await eventually(lambda: _version(svc, 1), timeout=30, message="rescored with model v1")
        assert h["band"] == "yellow"
        # Bands that make it green: one event. The same bands again: no further event.
        await svc.client.put("/v1/health-model", json={"weights": WEIGHTS, "bands": {"green": 60, "yellow": 30}})
        h = await eventually(lambda: _version(svc, 2), timeout=30, message="rescored with model v2")
        assert h["band"] == "green"
        await svc.client.put("/v1/health-model", json={"weights": WEIGHTS, "bands": {"green": 60, "yellow": 30}})
        await eventually(lambda: _version(svc, 3), timeout=30, message="rescored with model v3")

        events = await eventually(lambda: _changes(kafka, 3), timeout=30, message="health.changed events")
        assert [(e.data["old_band"], e.data["new_band"]) for e in events] == [
            (None, "green"), ("green", "yellow"), ("yellow", "green")]
        assert all(e.type == "postsales.health.changed" for e in events)
        assert events[1].data["old_score"] == 70.6 and events[1].data["new_score"] == 60.6
        factors = events[1].data["factors"]
        assert factors[0] == {"name": "sentiment", "status": "known", "value": 0.0, "old_contribution": 10.0,
                              "contribution": 0.0, "change": -10.0}
        assert [f["name"] for f in factors] == ["sentiment"]  # only what moved since the last emitted score
        assert events[0].data["factors"][0]["name"] == "usage"  # first: largest contribution first
        assert events[2].data["factors"] == []  # only the bands moved


async def _usage_known(svc: RunningService) -> dict[str, Any] | None:
    r = await svc.client.get("/v1/accounts/h1/health")
    if r.status_code != 200:
        return None
    h: dict[str, Any] = r.json()
    usage = next(c for c in h["components"] if c["name"] == "usage")
    return h if usage["inputs"].get("events_recent") == 8 else None


async def _version(svc: RunningService, version: int) -> dict[str, Any] | None:
    h = await _health(svc)
    return h if h["model_version"] == version else None


async def test_two_scorers_of_a_never_scored_account_do_not_collide(service: Any) -> None:
    """The health loop, a recompute and other replicas may score the same new account at once: the second
    waits for the first and updates its row, instead of inserting it again (a 500 on recompute before)."""
    now = utcnow()
    events = [UsageEnvelope(specversion="1.0", id=f"e{i}", source="/product/web", type="usage.login",
                            time=now - dt.timedelta(hours=i), subject="acme", data=UsageData(user_id=f"u{i % 3}"))
              for i in range(10)]
    async with service("metrics", run_consumers=False, run_relay=False, health_interval=3600) as svc:
        factory = svc.ctx.session_factory
        async with factory() as s, s.begin():
            await apply_usage_batch(s, events)
        first_scored = asyncio.Event()

        async def score(first: bool) -> None:
            async with factory() as s, s.begin():
                if not first:
                    await first_scored.wait()  # the first one's row is written, not committed
                await score_accounts(s, svc.ctx.outbox, ["acme"], now=now)
                if first:
                    first_scored.set()
                    await asyncio.sleep(0.5)  # the second one starts meanwhile

        await asyncio.gather(score(True), score(False))
        assert [a for a, *_ in await rows(svc, HealthScore)] == ["acme"]
