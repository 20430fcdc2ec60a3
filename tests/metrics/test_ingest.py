"""HTTP ingestion and configuration endpoints (no consumers needed: the relay publishes to Kafka)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

from shared.events.registry import FEEDBACK_TOPIC, USAGE_TOPIC
from shared.testing import KafkaProbe, eventually, make_event

READ = "test-metrics-ro-token-0123456789"
WRITE = "test-events-w-token-0123456789ab"
# These tests replay a fixed calendar (November 2026): the service accepts history that old, whenever they run.
HISTORY = {"max_event_age": "36500d"}


def doc(type: str, subject: str, data: dict[str, Any], id: str) -> dict[str, Any]:
    return make_event(type, subject, data, id=id, source="/product/web",
                      time=dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC)).model_dump(mode="json")


async def test_post_events_rejects_bad_items_by_index_and_publishes_the_rest(service: Any,
                                                                              kafka: KafkaProbe) -> None:
    good_usage = doc("usage.login", "acme", {"user_id": "u1", "quantity": 2}, "ev-1")
    no_user = doc("usage.login", "acme", {"feature": "x"}, "ev-2")
    survey = doc("postsales.survey.nps", "acme", {"score": 9}, "ev-3")
    bad_score = doc("postsales.survey.csat", "acme", {"score": 9}, "ev-4")
    lifecycle = doc("postsales.account.created", "acme", {"account_id": "acme"}, "ev-5")
    no_time = {k: v for k, v in doc("usage.login", "acme", {"user_id": "u1"}, "ev-6").items() if k != "time"}
    ticket = doc("postsales.ticket.opened", "acme", {"ticket_id": "T-1"}, "ev-7")
    body = [good_usage, no_user, "not an object", survey, bad_score, lifecycle, no_time,
            doc("nonsense.type", "acme", {}, "ev-8"), ticket]
    async with service("metrics", run_consumers=False, **HISTORY) as svc:
        writer = svc.client_for(WRITE)
        r = await writer.post("/v1/events", json=body)
        assert r.status_code == 202, r.text
        out = r.json()
        assert out["accepted"] == 3
        assert [x["index"] for x in out["rejected"]] == [1, 2, 4, 5, 6, 7]
        errors = {x["index"]: x["error"] for x in out["rejected"]}
        assert "user_id" in errors[1] and "score" in errors[4] and "time" in errors[6]
        assert "not ingested here" in errors[5] and "unknown event type" in errors[7]

        usage = await eventually(lambda: kafka.events(USAGE_TOPIC, settle=0.2))
        assert [(e.source, e.id, e.data) for e in usage] == [("/product/web", "ev-1", {"user_id": "u1",
                                                                                         "quantity": 2})]
        feedback = await eventually(lambda: _n_events(kafka, FEEDBACK_TOPIC, 2))
        assert sorted(e.id for e in feedback) == ["ev-3", "ev-7"]
        records = await kafka.read_all(USAGE_TOPIC)
        assert records[0].key == b"acme"  # the account id keys the message
        errors_text = " ".join(errors.values())
        assert "Traceback" not in errors_text and "a CloudEvent must be a JSON object" in errors[2]

        # Limits and auth: all-or-nothing refusals write nothing.
        too_many = [good_usage] * 1001
        r = await writer.post("/v1/events", json=too_many)
        assert r.status_code == 422 and "1000" in r.json()["detail"]
        assert (await writer.post("/v1/events", json={"not": "an array"})).status_code == 422
        assert (await svc.client_for(READ).post("/v1/events", json=[good_usage])).status_code == 403
        assert (await svc.client_for(None).post("/v1/events", json=[good_usage])).status_code == 401
        r = await writer.post("/v1/events", json=[])
        assert r.json() == {"accepted": 0, "rejected": []}
        assert len(await kafka.events(USAGE_TOPIC, settle=0.3)) == 1


async def test_post_events_publishes_each_item_as_posted_and_refuses_bodies_that_are_not_arrays(
        service: Any, kafka: KafkaProbe) -> None:
    # An extension attribute, an extra data field and odd spacing: the topic gets the bytes as posted.
    item = (b'{"specversion":"1.0", "id":"x-1","source":"/product/web","type":"usage.export",'
            b'"time":"2026-11-20T09:00:00+02:00","subject":"acme","tenant":"eu-1",'
            b'"data":{"user_id":"u1","feature":"csv","quantity":3,"rows":120}}')
    async with service("metrics", run_consumers=False, **HISTORY) as svc:
        writer = svc.client_for(WRITE)
        r = await writer.post("/v1/events", content=b"[ " + item + b" ]",
                              headers={"Content-Type": "application/json"})
        assert r.status_code == 202 and r.json() == {"accepted": 1, "rejected": []}, r.text
        records = await eventually(lambda: kafka.read_all(USAGE_TOPIC, settle=0.2))
        assert [(rec.key, rec.value) for rec in records] == [(b"acme", item)]

        for body, says in ((b'{"events": []}', "JSON array"), (b"[1, 2", "not valid JSON"), (b"", "not valid JSON")):
            r = await writer.post("/v1/events", content=body, headers={"Content-Type": "application/json"})
            assert r.status_code == 422 and says in r.json()["detail"], (body, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
        bad = [{"specversion": "1.0", "id": "q", "source": "/s", "type": "usage.login", "time": "2026-11-20T09:00:00Z",
                "subject": "acme", "data": {"user_id": "u", "quantity": q}} for q in (-1, True, "2", 1e400)]
        r = await writer.post("/v1/events", content=json.dumps(bad).replace("Infinity", "1e400"),
                              headers={"Content-Type": "application/json"})
        assert r.status_code == 422  # nothing valid: a problem listing every rejection
        assert [x["index"] for x in r.json()["rejected"]] == [0, 1, 2, 3]
        assert all(x["error"].startswith("data.quantity: ") for x in r.json()["rejected"]), r.text
        assert len(await kafka.read_all(USAGE_TOPIC, settle=0.3)) == 1


async def test_post_events_answers_503_when_the_broker_does_not_acknowledge_in_time(service: Any,
                                                                                  kafka: KafkaProbe) -> None:
    # A deadline no broker can meet stands in for an unreachable one: the request must fail loudly
    # (503 problem, Retry-After), and a retry once the broker answers counts each event once.
    events = [doc("usage.login", "acme", {"user_id": f"u{i}"}, f"slow-{i}") for i in range(50)]
    async with service("metrics", run_consumers=False, ingest_publish_timeout=0.000001, **HISTORY) as svc:
        await svc.ctx.relay.started.wait()  # connected: the deadline is the publish's, not the connection's
        r = await svc.client_for(WRITE).post("/v1/events", json=events)
        assert r.status_code == 503, r.text
        assert r.headers["content-type"].startswith("application/problem+json") and r.headers["retry-after"]
        assert "did not acknowledge" in r.json()["detail"] and "retry" in r.json()["detail"]
    async with service("metrics", **HISTORY) as svc:
        r = await svc.client_for(WRITE).post("/v1/events", json=events)
        assert r.status_code == 202 and r.json()["accepted"] == 50

        async def counted() -> int | None:
            usage = (await svc.client_for(READ).get("/v1/accounts/acme/usage",
                                                    params={"from": "2026-11-20", "to": "2026-11-20"})).json()
            n = sum(i["events"] for i in usage["items"])
            return n if n == 50 else None

        assert await eventually(counted, timeout=60, message="the 50 events counted") == 50
        await asyncio.sleep(1)  # anything published by the failed attempt has been consumed by now
        assert await counted() == 50


async def _n_events(kafka: KafkaProbe, topic: str, n: int) -> list[Any] | None:
    events = await kafka.events(topic, settle=0.2)
    return events if len(events) >= n else None


async def test_post_survey_becomes_a_feedback_event_once_per_idempotency_key(service: Any,
                                                                            kafka: KafkaProbe) -> None:
    async with service("metrics", run_consumers=False, **HISTORY) as svc:
        writer = svc.client_for(WRITE)
        body = {"account_id": "acme", "kind": "nps", "score": 10, "respondent": "cto@acme.example",
                "comment": "great", "at": "2026-11-20T10:00:00Z"}
        r1 = await writer.post("/v1/surveys", json=body, headers={"Idempotency-Key": "s-1"})
        r2 = await writer.post("/v1/surveys", json=body, headers={"Idempotency-Key": "s-1"})
        assert r1.status_code == r2.status_code == 202, r1.text
        assert r1.json()["event_id"] == r2.json()["event_id"]
        r = await writer.post("/v1/surveys", json={**body, "kind": "csat", "score": 6})
        assert r.status_code == 422 and "csat" in r.text
        r = await writer.post("/v1/surveys", json={**body, "at": "2026-11-20T10:00:00"})
        assert r.status_code == 422  # a time without an offset is ambiguous

        events = await eventually(lambda: kafka.events(FEEDBACK_TOPIC, settle=0.3))
        assert len(events) == 1
        e = events[0]
        assert (e.type, e.subject, e.id) == ("postsales.survey.nps", "acme", r1.json()["event_id"])
        assert e.data["score"] == 10 and e.data["respondent"] == "cto@acme.example"
        assert e.time == dt.datetime(2026, 11, 20, 10, tzinfo=dt.UTC)


async def test_health_model_is_versioned_and_validated(service: Any) -> None:
    weights = {"usage": 30, "engagement": 15, "sentiment": 20, "support": 15, "commitments": 10,
               "renewal_proximity": 10}
    async with service("metrics", run_consumers=False, run_relay=False) as svc:
        r = await svc.client_for(READ).get("/v1/health-model")
        assert r.status_code == 200
        assert r.json()["version"] == 0 and r.json()["bands"] == {"green": 70, "yellow": 40}
        invalid = [
            {"weights": {**weights, "usage": -1}, "bands": {"green": 70, "yellow": 40}},
            {"weights": {k: 0 for k in weights}, "bands": {"green": 70, "yellow": 40}},
            {"weights": {k: v for k, v in weights.items() if k != "support"}, "bands": {"green": 70, "yellow": 40}},
            {"weights": {**weights, "vibes": 5}, "bands": {"green": 70, "yellow": 40}},
            {"weights": weights, "bands": {"green": 40, "yellow": 70}},
            {"weights": weights, "bands": {"green": 170, "yellow": 40}},
        ]
        for body in invalid:
            r = await svc.client.put("/v1/health-model", json=body)
            assert r.status_code == 422, body
            assert r.headers["content-type"].startswith("application/problem+json")
        assert (await svc.client_for(READ).put("/v1/health-model", json={"weights": weights, "bands": {
            "green": 80, "yellow": 50}})).status_code == 403
        r = await svc.client.put("/v1/health-model", json={"weights": {**weights, "usage": 50},
                                                          "bands": {"green": 80, "yellow": 50}})
        assert r.status_code == 200, r.text
        assert r.json()["version"] == 1
        current = (await svc.client.get("/v1/health-model")).json()
        assert current["version"] == 1 and current["weights"]["usage"] == 50 and current["bands"]["green"] == 80
        versions = (await svc.client.get("/v1/health-model/versions")).json()["items"]
        assert [v["version"] for v in versions] == [1, 0]

        # Other reads and admin routes: scopes and validation.
        assert (await svc.client_for(READ).post("/v1/recompute", json={"from": "2026-01-01",
                                                                      "to": "2026-01-02"})).status_code == 403
        assert (await svc.client.post("/v1/recompute", json={"from": "2026-02-01",
                                                            "to": "2026-01-02"})).status_code == 422
        r = await svc.client_for(READ).get("/v1/accounts/acme/usage", params={"from": "2026-02-01",
                                                                             "to": "2026-01-01"})
        assert r.status_code == 422
        assert (await svc.client_for(READ).get("/v1/accounts/nobody/health")).status_code == 404
        assert (await svc.client_for(WRITE).get("/v1/kpis")).status_code == 403
