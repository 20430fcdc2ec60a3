"""Health scores through the real consumers: explanation, coverage, change, and health.changed once."""

from __future__ import annotations

import datetime as dt
from typing import Any

from shared.db import utcnow
from shared.events.registry import LIFECYCLE_TOPIC, METRICS_TOPIC, USAGE_TOPIC
from shared.testing import KafkaProbe, RunningService, eventually, make_event

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
            "account_id": "h1", "name": "H1", "seats": 10, "arr": "1000", "segment": "ent",
            "renewal_date": (today + dt.timedelta(days=200)).isoformat()}, time=now - dt.timedelta(days=60)),
        make_event("postsales.touchpoint.logged", "h1", {"account_id": "h1", "kind": "call",
                                                        "at": (now - dt.timedelta(hours=1)).isoformat()}),
    ]
    usage = [make_event("usage.login", "h1", {"user_id": f"u{i}"}, time=now - dt.timedelta(minutes=5))
             for i in range(8)]
    async with service("metrics", health_interval=0.1) as svc:
        await kafka.publish(LIFECYCLE_TOPIC, facts)
        await kafka.publish(USAGE_TOPIC, usage)

        async def scored(expected: float) -> dict[str, Any] | None:
            h = await _health(svc)
            return h if h["score"] == expected else None

        # usage: 8/10 seats -> 0.8*80 = 64, + 0.2 * trend 100 (8 events now, none before) = 84
        # engagement 100 (1 h ago), renewal 100 (200 days); sentiment, support, commitments unknown.
        # Known weight 30+15+10 = 55: (30*84 + 15*100 + 10*100) / 55 = 5020/55 = 91.27 -> 91.3
        h = await eventually(lambda: scored(91.3), timeout=60, interval=0.2, message="first score")
        assert h["band"] == "green" and h["coverage"] == 0.55  # (earlier partial scores may exist: all green)
        comps = {c["name"]: c for c in h["components"]}
        assert comps["usage"]["value"] == 84.0 and comps["usage"]["inputs"]["active_users_30d"] == 8
        assert comps["usage"]["weight"] == round(30 / 55, 4)
        assert comps["usage"]["contribution"] == round(30 / 55 * 84, 2)
        for name in ("sentiment", "support", "commitments"):
            assert comps[name]["status"] == "unknown" and comps[name]["value"] is None
            assert comps[name]["contribution"] == 0 and comps[name]["weight"] == 0
        assert comps["engagement"]["value"] == 100 and comps["renewal_proximity"]["value"] == 100
        assert h["as_of"] is not None and h["model_version"] == 0

        # A detractor: sentiment (0 - ... NPS -100 -> 0) joins; weight 75:
        # (2520 + 1500 + 1000 + 20*0) / 75 = 66.93 -> 66.9, yellow
        r = await svc.client.post("/v1/surveys", json={"account_id": "h1", "kind": "nps", "score": 0})
        assert r.status_code == 202
        h = await eventually(lambda: scored(66.9), timeout=30, interval=0.2, message="score after survey")
        assert h["band"] == "yellow" and h["coverage"] == 0.75
        change = h["change"]
        assert change["previous_score"] == 91.3 and change["previous_band"] == "green" and change["delta"] == -24.4
        reasons = {x["name"]: x for x in change["reasons"]}
        assert reasons["sentiment"]["previous_contribution"] is None and reasons["sentiment"]["contribution"] == 0
        assert reasons["usage"]["delta"] == round(round(30 / 75 * 84, 2) - round(30 / 55 * 84, 2), 2)

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
        assert events[1].data["old_score"] == 91.3 and events[1].data["new_score"] == 66.9
        assert events[1].data["factors"][0]["name"] == "usage"  # largest contribution first


async def _version(svc: RunningService, version: int) -> dict[str, Any] | None:
    h = await _health(svc)
    return h if h["model_version"] == version else None
