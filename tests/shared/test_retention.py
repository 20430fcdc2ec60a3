"""Bounded state: dedup and idempotency keys past their retention go, newer ones stay, and a duplicate
inside the window is still dropped."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import insert, select, update

from shared.db import utcnow
from shared.events import CloudEvent
from shared.events.registry import LIFECYCLE_TOPIC
from shared.settings import ServiceSettings
from shared.testing import eventually
from tests.shared import demo
from tests.shared.test_skeleton import samples

PE, IK = demo.infra.processed_events, demo.infra.idempotency_keys


def ev(account: str, seq: int) -> CloudEvent:
    return CloudEvent.new(type="postsales.account.updated", source="/tests", subject=account,
                          data={"account_id": account, "name": "ok", "seats": seq})


async def column(svc, col) -> set[str]:
    async with svc.ctx.session_factory() as s:
        return set((await s.execute(select(col))).scalars())


async def test_keys_past_retention_go_newer_stay_and_a_duplicate_in_the_window_is_dropped(demo_service, kafka):
    old, recent = ev("old", 1), ev("recent", 2)
    await kafka.publish(LIFECYCLE_TOPIC, [old, recent])
    async with demo_service(run_relay=False, retention_interval=0.2, retention_batch_size=2) as svc:
        await eventually(lambda: _is(column(svc, demo.Applied.event_id), {old.id, recent.id}), timeout=60,
                         message="both events applied")
        consumer = svc.ctx.consumers[0]
        s, now = svc.settings, utcnow()
        async with svc.ctx.session_factory() as session, session.begin():
            await session.execute(update(PE).where(PE.c.event_id == old.id)
                                  .values(processed_at=now - s.dedup_keys_kept - dt.timedelta(hours=1)))
            await session.execute(update(PE).where(PE.c.event_id == recent.id)
                                  .values(processed_at=now - s.dedup_keys_kept + dt.timedelta(hours=1)))
            ages = {f"stale-{i}": s.idempotency_retention + dt.timedelta(minutes=i + 1) for i in range(5)}
            ages["fresh"] = s.idempotency_retention - dt.timedelta(hours=1)
            await session.execute(insert(IK), [
                {"key": k, "scope": "POST /v1/notes", "request_hash": "0" * 64, "status_code": 201,
                 "response_body": b"{}", "created_at": now - age} for k, age in ages.items()])

        # The service's own retention loop purges them, in batches of two.
        await eventually(lambda: _is(column(svc, IK.c.key), {"fresh"}), timeout=60, message="stale idempotency keys")
        await eventually(lambda: _is(column(svc, PE.c.event_id), {recent.id}), timeout=60, message="old dedup key")
        text = (await svc.client.get("/metrics")).text
        purged = samples(text, "retention_purged_rows_total")
        assert purged[(("table", "idempotency_keys"),)] == 5
        assert purged[(("table", "processed_events"),)] == 1
        assert samples(text, "background_loop_passes_total")[(("loop", "retention"), ("outcome", "ok"))] >= 1

        # A redelivery of the event whose key is still inside the window is recognised and dropped; the
        # next event on the same key (same partition, after it) proves the redelivery was read.
        duplicates = consumer.stats["duplicates"]
        after = ev("recent", 3)
        await kafka.publish(LIFECYCLE_TOPIC, [recent, after])
        await eventually(lambda: _is(column(svc, demo.Applied.event_id), {old.id, recent.id, after.id}),
                         timeout=60, message="the event after the duplicate")
        assert consumer.stats["duplicates"] == duplicates + 1
        assert await column(svc, PE.c.event_id) == {recent.id, after.id}


@pytest.mark.db_independent
def test_dedup_keys_are_kept_at_least_as_long_as_the_oldest_accepted_event() -> None:
    day = dt.timedelta(days=1)  # MAX_FUTURE_SKEW: an event may be applied up to that much before its own time
    assert ServiceSettings().dedup_keys_kept == ServiceSettings().max_event_age + day
    assert ServiceSettings().max_event_age >= dt.timedelta(days=3 * 365)
    assert ServiceSettings(max_event_age="5y").dedup_keys_kept == dt.timedelta(days=5 * 365) + day
    assert ServiceSettings(max_event_age="30d", dedup_retention="60d").dedup_keys_kept == dt.timedelta(days=61)
    assert ServiceSettings(max_event_age="30d", max_future_skew="2h").dedup_keys_kept == dt.timedelta(days=30, hours=2)
    assert ServiceSettings(max_event_age="30d", max_future_skew="2h").dedup_window == dt.timedelta(days=30)
    with pytest.raises(ValueError, match="must be at least MAX_EVENT_AGE"):
        ServiceSettings(dedup_retention="1y")
    assert ServiceSettings(idempotency_retention="36h").idempotency_retention == dt.timedelta(hours=36)


async def _is(values, expected: set[str]) -> bool:
    return await values == expected
