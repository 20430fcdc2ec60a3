"""HTTP ingestion and configuration endpoints (no consumers needed: the relay publishes to Kafka)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from shared.events.registry import FEEDBACK_TOPIC, USAGE_TOPIC
from shared.testing import KafkaProbe, eventually, make_event

READ = "test-metrics-ro-token-0123456789"
WRITE = "test-events-w-token-0123456789ab"


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
    async with service("metrics", run_consumers=False) as svc:
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


async def _n_events(kafka: KafkaProbe, topic: str, n: int) -> list[Any] | None:
    events = await kafka.events(topic, settle=0.2)
    return events if len(events) >= n else None


async def test_post_survey_becomes_a_feedback_event_once_per_idempotency_key(service: Any,
                                                                            kafka: KafkaProbe) -> None:
    async with service("metrics", run_consumers=False) as svc:
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
