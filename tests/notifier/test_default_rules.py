"""The built-in rules page on transitions: a first score (an imported book) or a red-to-red score
update raises nothing; a move into red or into high churn risk does."""

from __future__ import annotations

from shared.testing import make_event
from tests.notifier.conftest import alerts, builtin_rule, inject


async def test_health_turned_red_needs_a_move_from_another_band(service) -> None:
    async with service("notifier", run_consumers=False, run_relay=False) as svc:
        rule = await builtin_rule(svc, "health-turned-red")
        first = make_event("postsales.health.changed", "first-co", {
            "account_id": "first-co", "new_score": 20.0, "new_band": "red"})
        red_to_red = make_event("postsales.health.changed", "still-co", {
            "account_id": "still-co", "old_score": 30.0, "new_score": 24.0, "old_band": "red", "new_band": "red"})
        moved = make_event("postsales.health.changed", "moved-co", {
            "account_id": "moved-co", "old_score": 45.0, "new_score": 35.0, "old_band": "yellow", "new_band": "red"})
        for event in (first, red_to_red, moved):
            await inject(svc, event)
        fired = await alerts(svc, rule_id=rule["id"])
        assert [a.labels["subject"] for a in fired] == ["moved-co"]


async def test_churn_risk_high_fires_on_a_move_into_high_and_resolves_when_it_drops(service) -> None:
    async with service("notifier", run_consumers=False, run_relay=False) as svc:
        rule = await builtin_rule(svc, "churn-risk-high")
        assert rule["event_type"] == "postsales.risk.changed" and rule["builtin"]

        def risk(account: str, old: str | None, new: str, p: float) -> dict:
            data = {"account_id": account, "new_band": new, "new_probability": p, "drivers": []}
            if old is not None:
                data |= {"old_band": old, "old_probability": 0.3}
            return make_event("postsales.risk.changed", account, data)

        await inject(svc, risk("imported-co", None, "high", 0.8))  # first scoring after an import
        await inject(svc, risk("sliding-co", "medium", "high", 0.7))
        [alert] = await alerts(svc, rule_id=rule["id"])
        assert alert.labels["subject"] == "sliding-co" and alert.status == "firing"
        await inject(svc, risk("sliding-co", "high", "medium", 0.35))
        [alert] = await alerts(svc, rule_id=rule["id"])
        assert alert.status == "resolved"
