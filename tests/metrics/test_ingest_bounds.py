"""Input bounds on every counted number and recorded time: over HTTP (a 422 per item, a 422 problem when
nothing is valid) and straight on the topics (dead-lettered, never counted)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select

from services.metrics.models import Survey, Ticket, UsageEventKey
from shared.db import utcnow
from shared.events.registry import FEEDBACK_TOPIC, USAGE_TOPIC, dlq_topic
from shared.testing import KafkaProbe, RunningService, eventually, make_event

READ = "test-metrics-ro-token-0123456789"
WRITE = "test-events-w-token-0123456789ab"


def usage(id: str, *, quantity: float = 1, time: dt.datetime | None = None, subject: str = "acme") -> dict[str, Any]:
    return make_event("usage.login", subject, {"user_id": f"user-{id}", "quantity": quantity}, id=id,
                      source="/product/web", time=time).model_dump(mode="json")


def survey(id: str, score: int, time: dt.datetime) -> dict[str, Any]:
    return make_event("postsales.survey.nps", "acme", {"score": score}, id=id, source="/crm",
                      time=time).model_dump(mode="json")


async def _day_events(svc: RunningService, day: dt.date) -> float | None:
    r = await svc.client_for(READ).get("/v1/accounts/acme/usage", params={"from": str(day), "to": str(day)})
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    return items[0]["events"] if items else None


async def _count(svc: RunningService, model: Any) -> int:
    async with svc.ctx.session_factory() as s:
        return int((await s.execute(select(func.count()).select_from(model))).scalar_one())


async def test_http_refuses_out_of_bounds_items_by_index_and_counts_the_rest_once(service: Any,
                                                                                  kafka: KafkaProbe) -> None:
    now = utcnow()
    today = now.date()
    body = [
        usage("big-1", quantity=1e308),                                    # 0: over METRICS_MAX_QUANTITY
        usage("big-2", quantity=1e308),                                    # 1
        usage("future", time=dt.datetime(2099, 1, 1, tzinfo=dt.UTC)),      # 2
        usage("ancient", time=dt.datetime(1900, 1, 1, tzinfo=dt.UTC)),     # 3
        survey("s-future", 9, now + dt.timedelta(days=2)),                 # 4: surveys are bounded too
        usage("max-1", quantity=1e9, time=now),                            # 5: at the maximum: fine
        usage("max-2", quantity=1e9, time=now),                            # 6
        usage("max-1", quantity=1e9, time=now),                            # 7: already seen: accepted, counts once
        usage("neg", quantity=-1),                                         # 8
    ]
    async with service("metrics") as svc:
        writer = svc.client_for(WRITE)
        r = await writer.post("/v1/events", json=body)
        assert r.status_code == 202, r.text
        out = r.json()
        assert out["accepted"] == 3
        errors = {x["index"]: x["error"] for x in out["rejected"]}
        assert sorted(errors) == [0, 1, 2, 3, 4, 8]
        assert errors[0].startswith("data.quantity: ") and "METRICS_MAX_QUANTITY" in errors[0]
        assert errors[2].startswith("time: 2099-01-01") and "in the future" in errors[2]
        assert errors[3].startswith("time: 1900-01-01") and "maximum event age" in errors[3]
        assert "in the future" in errors[4] and errors[8].startswith("data.quantity: ")

        # The same event again in a later batch: accepted, still counted once. The day's sum stays finite.
        r = await writer.post("/v1/events", json=[usage("max-2", quantity=1e9, time=now)])
        assert r.status_code == 202 and r.json() == {"accepted": 1, "rejected": []}
        assert await eventually(lambda: _is(svc, today, 2e9), timeout=60, message="counted") == 2e9
        await eventually(lambda: _consumed(svc, "metrics-usage", 4), timeout=30, message="all consumed")
        assert await _day_events(svc, today) == 2e9 and await _count(svc, UsageEventKey) == 2

        # Nothing valid: a 422 problem listing every rejection; nothing published.
        r = await writer.post("/v1/events", json=[*body[:5], {"specversion": "1.0"}])
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        problem = r.json()
        assert [x["index"] for x in problem["rejected"]] == [0, 1, 2, 3, 4, 5]
        assert [x["loc"] for x in problem["errors"]] == [["body", i] for i in range(6)]
        assert "no event in the batch is valid" in problem["detail"]
        assert problem["errors"][2]["msg"] == problem["rejected"][2]["error"]
        assert len(await kafka.read_all(USAGE_TOPIC, settle=0.3)) == 4  # 3 + 1, none of the refused ones

        # POST /v1/surveys: `at` is bounded the same way.
        for at, says in [((now + dt.timedelta(days=3)).isoformat(), "in the future"),
                         ("1999-05-01T00:00:00Z", "maximum event age")]:
            r = await writer.post("/v1/surveys", json={"account_id": "acme", "kind": "nps", "score": 3, "at": at})
            assert r.status_code == 422 and says in r.json()["detail"], r.text
            assert r.json()["errors"][0]["loc"] == ["body", "at"]


async def _is(svc: RunningService, day: dt.date, expected: float) -> float | None:
    got = await _day_events(svc, day)
    return got if got == expected else None


async def _consumed(svc: RunningService, name: str, n: int) -> bool:
    c = next(c for c in svc.ctx.consumers if c.name == name)
    return bool(c.stats["applied"] + c.stats["duplicates"] >= n)


async def test_bounds_are_settings(service: Any) -> None:
    async with service("metrics", run_consumers=False, max_quantity=100, max_future_skew="0s",
                       max_event_age="30d") as svc:
        now = utcnow()
        r = await svc.client_for(WRITE).post("/v1/events", json=[
            usage("a", quantity=100, time=now - dt.timedelta(minutes=1)), usage("b", quantity=101),
            usage("c", time=now + dt.timedelta(hours=1)), usage("d", time=now - dt.timedelta(days=31))])
        assert r.status_code == 202, r.text
        assert r.json()["accepted"] == 1
        errors = [x["error"] for x in r.json()["rejected"]]
        assert "maximum of 100" in errors[0] and "0 s in the future" in errors[1] and "30 days" in errors[2]


async def test_out_of_bounds_events_on_the_topics_are_dead_lettered_not_counted(service: Any,
                                                                               kafka: KafkaProbe) -> None:
    now = utcnow()
    good = [make_event("usage.login", "acme", {"user_id": f"u{i}", "quantity": 1e9}, id=f"ok-{i}", time=now)
            for i in range(3)]
    bad = [make_event("usage.login", "acme", {"user_id": "x", "quantity": 1e308}, id="huge-1", time=now),
           make_event("usage.login", "acme", {"user_id": "x", "quantity": 1e308}, id="huge-2", time=now),
           make_event("usage.login", "acme", {"user_id": "x"}, id="y2099", time=dt.datetime(2099, 1, 1, tzinfo=dt.UTC)),
           make_event("usage.login", "acme", {"user_id": "x"}, id="y1900", time=dt.datetime(1900, 1, 1, tzinfo=dt.UTC))]
    surveys = [make_event("postsales.survey.nps", "acme", {"score": 2}, id="old-survey",
                          time=dt.datetime(1990, 1, 1, tzinfo=dt.UTC)),
               make_event("postsales.survey.nps", "acme", {"score": 2}, id="future-survey",
                          time=now + dt.timedelta(days=30)),
               make_event("postsales.survey.nps", "acme", {"score": 9}, id="fine-survey", time=now),
               make_event("postsales.ticket.opened", "acme", {"ticket_id": "T-2099"}, id="future-ticket",
                          time=dt.datetime(2099, 1, 1, tzinfo=dt.UTC))]
    async with service("metrics") as svc:
        await kafka.publish(USAGE_TOPIC, bad[:2] + good[:1] + bad[2:] + good[1:])
        await kafka.publish(FEEDBACK_TOPIC, surveys)
        dead = await eventually(lambda: _n_records(kafka, dlq_topic(USAGE_TOPIC), 4), timeout=60,
                                message="usage dead letters")
        assert sorted(_id(r.value) for r in dead) == ["huge-1", "huge-2", "y1900", "y2099"]
        errors = [dict(r.headers).get("dlq_error", b"").decode() for r in dead]
        assert all("METRICS_MAX_QUANTITY" in e or "METRICS_MAX_EVENT_AGE" in e or "METRICS_MAX_FUTURE_SKEW" in e
                   for e in errors), errors
        assert await eventually(lambda: _is(svc, now.date(), 3e9), timeout=60, message="good ones counted") == 3e9
        assert await _count(svc, UsageEventKey) == 3

        dead = await eventually(lambda: _n_records(kafka, dlq_topic(FEEDBACK_TOPIC), 3), timeout=60,
                                message="feedback dead letters")
        assert sorted(_id(r.value) for r in dead) == ["future-survey", "future-ticket", "old-survey"]
        await eventually(lambda: _count_is(svc, Survey, 1), timeout=60, message="the fine survey stored")
        assert await _count(svc, Ticket) == 0


async def _n_records(kafka: KafkaProbe, topic: str, n: int) -> list[Any] | None:
    records = await kafka.read_all(topic, settle=0.2)
    return records if len(records) >= n else None


async def _count_is(svc: RunningService, model: Any, n: int) -> bool:
    return await _count(svc, model) == n


def _id(value: bytes) -> str:
    import json
    return str(json.loads(value)["id"])
