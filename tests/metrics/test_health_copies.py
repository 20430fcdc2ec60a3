"""Copies of the health score downstream stay fresh: metrics, lifecycle and the notifier on the real
broker; the score moves in small steps and every copy stays within METRICS_HEALTH_MIN_DELTA of it."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from services.notifier.models import AccountState
from shared.db import utcnow
from shared.events.registry import METRICS_TOPIC, USAGE_TOPIC
from shared.testing import KafkaProbe, RunningService, eventually, make_event

DELTA = 5.0


async def _metrics_score(svc: RunningService, expected: float) -> dict[str, Any] | None:
    r = await svc.client.get("/v1/accounts/steady/health")
    if r.status_code != 200:
        return None
    h: dict[str, Any] = r.json()
    return h if h["score"] == expected else None


async def _emitted(kafka: KafkaProbe) -> list[Any]:
    return [e for e in await kafka.events(METRICS_TOPIC, settle=0.1) if e.subject == "steady"]


async def _last_within(kafka: KafkaProbe, score: float, band: str) -> dict[str, Any] | None:
    emitted = await _emitted(kafka)
    last: dict[str, Any] | None = emitted[-1].data if emitted else None
    return last if last is not None and last["new_band"] == band and abs(last["new_score"] - score) < DELTA else None


async def _lifecycle_copy(svc: RunningService, score: float) -> dict[str, Any] | None:
    r = await svc.client.get("/v1/accounts/steady")
    health: dict[str, Any] | None = r.json()["health"] if r.status_code == 200 else None
    return health if health is not None and health["score"] == score else None


async def _notifier_copy(svc: RunningService, score: float) -> AccountState | None:
    async with svc.ctx.session_factory() as s:
        state = await s.get(AccountState, "steady")
    return state if state is not None and state.health_score == score else None


async def test_lifecycle_and_notifier_copies_are_never_further_off_than_the_delta(service: Any,
                                                                                   kafka: KafkaProbe) -> None:
    now = utcnow()
    async with service("metrics", health_interval=0.05, health_min_delta=DELTA) as metrics, \
            service("lifecycle") as lifecycle, service("notifier") as notifier:
        r = await lifecycle.client.post("/v1/accounts", json={
            "id": "steady", "name": "Steady Inc", "seats": 100, "stage": "adoption",
            "renewal_date": (now.date() + dt.timedelta(days=400)).isoformat()})
        assert r.status_code == 201, r.text
        # With k of 100 seats active: usage = 0.8k + 20 (trend 100); engagement 100 (created now), support
        # 100, renewal 100 (70% of the weight known); sentiment and commitments counted at 50:
        # score = 0.3 (0.8k + 20) + 15 + 15 + 10 + 15 = 61 + 0.24k; 4 more users a step: +0.96.
        users = 0
        scores: list[float] = []
        for step in range(25):
            await kafka.publish(USAGE_TOPIC, [
                make_event("usage.login", "steady", {"user_id": f"u{users + j}"}, id=f"s{step}-{j}", time=now)
                for j in range(4)])
            users += 4
            expected = round(61 + 0.24 * users, 1)
            h = await eventually(lambda e=expected: _metrics_score(metrics, e), timeout=60, interval=0.1,  # type: ignore[misc]
                                 message=f"metrics scored step {step}")
            scores.append(h["score"])
            # The event is written with the score (one transaction) and reaches the topic right after.
            # (a band change is always emitted)
            last = await eventually(lambda s=h["score"], b=h["band"]: _last_within(kafka, s, b),  # type: ignore[misc]
                                    timeout=30, message=f"a health.changed within the delta at step {step}")
            # Each copy catches up with the last emitted score: then it is within the delta of the truth.
            copy = await eventually(lambda s=last["new_score"]: _lifecycle_copy(lifecycle, s), timeout=30,  # type: ignore[misc]
                                    message=f"lifecycle caught up at step {step}")
            assert copy["band"] == h["band"] and abs(copy["score"] - h["score"]) < DELTA
            state = await eventually(lambda s=last["new_score"]: _notifier_copy(notifier, s), timeout=30,  # type: ignore[misc]
                                     message=f"notifier caught up at step {step}")
            assert state.health_band == h["band"] and abs(state.health_score - h["score"]) < DELTA

        emitted = await _emitted(kafka)
        # Fresh, but not chatty: one event per 5 points (or band change), not one per re-score.
        assert 4 <= len(emitted) <= 7, [(e.data["old_score"], e.data["new_score"]) for e in emitted]
        assert scores[0] < 70 <= scores[-1]
        bands = [(e.data["old_band"], e.data["new_band"]) for e in emitted]
        assert bands[0] == (None, "yellow") and ("yellow", "green") in bands
        for previous, event in itertools.pairwise(emitted):
            assert event.data["old_score"] == previous.data["new_score"]  # old = what downstream held
            moved = abs(event.data["new_score"] - event.data["old_score"])
            assert moved >= DELTA or event.data["new_band"] != event.data["old_band"]
            assert event.data["factors"][0]["name"] == "usage" and event.data["factors"][0]["change"] > 0
