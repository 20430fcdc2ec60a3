"""The rule engine: condition semantics, timing (group_wait, repeat, escalation), schema."""

from __future__ import annotations

import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from services.notifier.models import Base
from shared.events.conditions import conditions_hold, could_match_usage, event_context, parse_duration
from shared.testing import eventually, make_event
from tests.notifier.conftest import FAST, alerts, deliveries, inject, rule, webhook_channel


def doc(data: dict, band: str | None = None) -> dict:
    return event_context(make_event("postsales.survey.nps", "acme", data), {"health_band": band})


@pytest.mark.parametrize(("conditions", "data", "band", "expected"), [
    ({"data.score": {"lte": 6}}, {"score": 6}, None, True),
    ({"data.score": {"lte": 6}}, {"score": 7}, None, False),
    ({"data.score": {"lte": 6}}, {}, None, False),  # missing never compares
    ({"data.arr": {"gt": 1000}}, {"arr": "1500.00"}, None, True),  # decimals travel as strings
    ({"data.score": {"gt": "abc"}}, {"score": 3}, None, False),  # mixed types never match
    ({"data.band": {"in": ["red", "yellow"]}}, {"band": "yellow"}, None, True),
    ({"data.band": {"ne": "green"}}, {}, None, True),
    ({"data.x": {"exists": True}}, {"x": 0}, None, True),
    ({"data.x": {"exists": False}}, {"x": None}, None, True),
    ({"account.health_band": {"in": ["yellow", "red"]}}, {}, "red", True),
    ({"account.health_band": {"in": ["yellow", "red"]}}, {}, None, False),
    ({"data.score": {"gte": 0, "lte": 6}, "subject": {"eq": "acme"}}, {"score": 0}, None, True),
    ({"data.items.1.id": {"eq": "b"}}, {"items": [{"id": "a"}, {"id": "b"}]}, None, True),
    ({"type": {"eq": "postsales.survey.csat"}}, {}, None, False),
])
def test_conditions(conditions: dict, data: dict, band: str | None, expected: bool) -> None:
    assert conditions_hold(conditions, doc(data, band)) is expected


def test_durations_and_usage_patterns() -> None:
    assert parse_duration("30s") == 30 and parse_duration("4h") == 14400 and parse_duration("250ms") == 0.25
    for bad in ("4 hours", "-1s", "1w", "", "9999d"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert could_match_usage("usage.*") and could_match_usage("*") and could_match_usage("usage.login")
    assert could_match_usage("us*") and not could_match_usage("postsales.*")


async def test_migrations_produce_the_models_schema(service) -> None:
    async with service("notifier", run_consumers=False, run_relay=False) as svc:
        engine = create_async_engine(svc.settings.database_url)
        async with engine.connect() as conn:
            diff = await conn.run_sync(lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata))
        await engine.dispose()
        assert [d for d in diff if d[0] != "remove_table" or d[1].name != "alembic_version"] == []


async def test_group_wait_repeat_escalation_and_ack(service, receiver) -> None:
    async with service("notifier", run_consumers=False, **FAST) as svc:
        main = await webhook_channel(svc, receiver.url("/main"), name="main")
        oncall = await webhook_channel(svc, receiver.url("/oncall"), name="oncall")
        await rule(svc, name="ticket", event_type="postsales.ticket.opened", channels=[main["id"]],
                   group_wait="1s", repeat_interval="1s", escalation={"after": "3s", "channel": oncall["id"]})
        await inject(svc, make_event("postsales.ticket.opened", "acme", {"ticket_id": "t1"}))
        await asyncio.sleep(0.6)
        assert receiver.requests == [], "group_wait holds the first notification"

        async def escalated_and_repeated() -> list[str]:
            # Under load the scheduler's passes may be late, so the repeat can come after the escalation.
            reasons = [d.reason for d in await deliveries(svc)]
            return reasons if len(receiver.by_path("/oncall")) == 1 and "repeat" in reasons else []

        reasons = await eventually(escalated_and_repeated, timeout=20)
        assert reasons[0] == "firing" and reasons.count("escalation") == 1
        [alert] = await alerts(svc)
        assert (await svc.client.post(f"/v1/alerts/{alert.id}/ack")).status_code == 200
        count = len(await deliveries(svc))
        await asyncio.sleep(1.5)  # past repeat_interval: an acknowledged alert stays quiet
        assert len(await deliveries(svc)) == count
        assert len(receiver.by_path("/oncall")) == 1


async def test_deleting_a_rule_resolves_its_alerts_and_channel_in_use_is_409(service, kafka) -> None:
    async with service("notifier", run_consumers=False, **FAST) as svc:
        ch = await webhook_channel(svc, "http://127.0.0.1:9/none")
        r = await rule(svc, name="ticket", event_type="postsales.ticket.opened", group_wait="1h",
                       channels=[ch["id"]])
        blocker = await rule(svc, name="blocker", event_type="postsales.ticket.resolved",
                             inhibits={"rules": [r["id"]]})
        await inject(svc, make_event("postsales.ticket.opened", "acme", {"ticket_id": "t1"}))
        assert (await svc.client.delete(f"/v1/channels/{ch['id']}")).status_code == 409
        assert (await svc.client.delete(f"/v1/rules/{r['id']}")).status_code == 204
        [alert] = await alerts(svc)
        assert alert.status == "resolved" and alert.resolution == "rule deleted"
        assert (await svc.client.get(f"/v1/rules/{blocker['id']}")).json()["inhibits"] is None
        assert (await svc.client.delete(f"/v1/channels/{ch['id']}")).status_code == 204
        assert (await svc.client.get(f"/v1/rules/{r['id']}")).status_code == 404
