"""HTTP surface: validation (422 problem+json), scopes, secrets shown once, alert transitions."""

from __future__ import annotations

import base64
import datetime as dt

from services.notifier.models import Channel
from shared.testing import make_event
from shared.testing.helpers import TEST_API_KEYS
from tests.notifier.conftest import FAST, inject, rule, webhook_channel

RO = next(t for t, s in TEST_API_KEYS.items() if s == ["alerts:read"])
NO_SCOPE = next(t for t, s in TEST_API_KEYS.items() if s == [])


def assert_problem(r, status: int, field: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status and body["type"] and body["title"]
    if field is not None:
        locs = [".".join(map(str, e["loc"])) for e in body["errors"]]
        assert any(field in loc for loc in locs), (field, locs)
    return body


async def test_bad_channel_configs_are_422_and_nothing_is_written(service) -> None:
    async with service("notifier", run_consumers=False, run_relay=False) as svc:
        c = svc.client
        bad = [
            ({"name": "a", "kind": "webhook", "url": "ftp://example.com/x"}, "url"),
            ({"name": "a", "kind": "webhook", "url": "javascript:alert(1)"}, "url"),
            ({"name": "a", "kind": "webhook"}, "url"),
            ({"name": "a", "kind": "slack", "url": "https:///nohost"}, "url"),
            ({"name": "a", "kind": "webhook", "url": "https://h.example/x", "secret": "plain"}, "secret"),
            ({"name": "a", "kind": "webhook", "url": "https://h.example/x", "secret": "whsec_!!notb64"}, "secret"),
            ({"name": "a", "kind": "webhook", "url": "https://h.example/x",
              "secret": "whsec_" + base64.b64encode(b"short").decode()}, "secret"),
            ({"name": "a", "kind": "email", "address": "not-an-email"}, "address"),
            ({"name": "a", "kind": "email", "address": "a@b.example", "smtp": {"tls": "ssl3"}}, "smtp"),
            ({"name": "a", "kind": "email", "address": "a@b.example", "smtp": {"from_address": "x"}},
             "smtp.from_address"),
            ({"name": "a", "kind": "email", "address": "a@b.example", "smtp": {"port": 70000}}, "smtp"),
            ({"name": "a", "kind": "slack", "url": "https://hooks.slack.example/x", "secret": "whsec_abc"}, "secret"),
            ({"name": "a", "kind": "pager", "url": "https://h.example"}, "kind"),
        ]
        for body, field in bad:
            assert_problem(await c.post("/v1/channels", json=body), 422, field)
        assert (await c.get("/v1/channels")).json()["items"] == []


async def test_webhook_secret_is_shown_once_and_stored_encrypted(service) -> None:
    async with service("notifier", run_consumers=False, run_relay=False) as svc:
        r = await svc.client.post("/v1/channels", headers={"Idempotency-Key": "k1"},
                                  json={"name": "hook", "kind": "webhook", "url": "https://h.example/x"})
        assert r.status_code == 201
        created = r.json()
        secret = created["secret"]
        assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
        again = await svc.client.get(f"/v1/channels/{created['id']}")
        assert again.status_code == 200 and "secret" not in again.json() and again.json()["has_secret"]
        assert secret not in (await svc.client.get("/v1/channels")).text
        replay = await svc.client.post("/v1/channels", headers={"Idempotency-Key": "k1"},
                                       json={"name": "hook", "kind": "webhook", "url": "https://h.example/x"})
        assert replay.status_code == 201 and replay.json()["id"] == created["id"]
        assert replay.json()["secret"] is None
        async with svc.ctx.session_factory() as s:
            row = await s.get(Channel, created["id"])
            assert row is not None and row.secret_enc and secret not in row.secret_enc
            assert secret[6:] not in str(row.config)
        dup = await svc.client.post("/v1/channels", json={"name": "hook", "kind": "slack",
                                                          "url": "https://hooks.slack.example/x"})
        assert_problem(dup, 409)
        given = "whsec_" + base64.b64encode(b"k" * 32).decode()
        own = await webhook_channel(svc, "https://h.example/y", name="own", secret=given)
        assert own["secret"] == given


async def test_bad_rules_are_422_problem_json(service) -> None:
    async with service("notifier", run_consumers=False, run_relay=False) as svc:
        c = svc.client
        base = {"name": "r", "event_type": "postsales.survey.nps"}
        bad = [
            ({"conditions": {"data.score": {"between": [1, 2]}}}, "conditions.data.score.between"),
            ({"conditions": {"data.score": {"in": 3}}}, "conditions.data.score.in"),
            ({"conditions": {"data.score": 3}}, "conditions.data.score"),
            ({"conditions": {"payload.score": {"eq": 3}}}, "conditions.payload.score"),
            ({"conditions": {"data..score": {"eq": 3}}}, "conditions"),
            ({"conditions": {"account.favourite": {"eq": 1}}}, "conditions"),
            ({"conditions": {"data.x": {"exists": "yes"}}}, "conditions.data.x.exists"),
            ({"group_wait": "soon"}, "group_wait"),
            ({"repeat_interval": "0s"}, "repeat_interval"),
            ({"repeat_interval": "4 hours"}, "repeat_interval"),
            ({"channels": ["no-such-channel"]}, "channels.0"),
            ({"severity": "fatal"}, "severity"),
            ({"group_by": ["subject", "bogus.path"]}, "group_by.1"),
            ({"escalation": {"after": "1h", "channel": "nope"}}, "escalation.channel"),
            ({"resolve_when": {"event_type": "postsales.health.changed",
                               "conditions": {"data.new_band": {"like": "g"}}}}, "resolve_when"),
            ({"inhibits": {"rules": ["missing-rule"]}}, "inhibits.rules.0"),
            ({"summary": {"en": "{{ broken "}}, "summary.en"),
            ({"event_type": "usage.login"}, "event_type"),
            ({"event_type": "post*sales"}, "event_type"),
        ]
        for extra, field in bad:
            assert_problem(await c.post("/v1/rules", json={**base, **extra}), 422, field)
        names = [r["name"] for r in (await c.get("/v1/rules")).json()["items"]]
        assert "r" not in names
        ok = await rule(svc, **base, conditions={"data.score": {"lte": 6}})
        bad_put = {**base, "conditions": {"data.score": {"in": "x"}}}
        assert_problem(await c.put(f"/v1/rules/{ok['id']}", json=bad_put), 422)
        assert (await c.get(f"/v1/rules/{ok['id']}")).json()["conditions"] == {"data.score": {"lte": 6}}
        assert_problem(await c.post("/v1/rules", json={**base, "conditions": {}}), 409)


async def test_default_rules_exist_and_scopes_apply(service) -> None:
    async with service("notifier", run_consumers=False, run_relay=False) as svc:
        rules = {r["name"]: r for r in (await svc.client.get("/v1/rules")).json()["items"]}
        assert {"health-turned-red", "nps-detractor", "renewal-at-risk", "onboarding-stuck",
                "commitment-at-risk", "churn-risk-high"} <= set(rules)
        assert all(rules[n]["builtin"] and rules[n]["channels"] == [] for n in rules)
        assert rules["health-turned-red"]["resolve_when"]["conditions"] == {"data.new_band": {"eq": "green"}}
        ro = svc.client_for(RO)
        assert (await ro.get("/v1/alerts")).status_code == 200
        assert_problem(await ro.post("/v1/rules", json={"name": "x", "event_type": "postsales.survey.nps"}), 403)
        assert_problem(await svc.client_for(NO_SCOPE).get("/v1/alerts"), 403)
        assert_problem(await svc.client_for(None).get("/v1/channels"), 401)
        assert_problem(await svc.client.get("/v1/alerts", params={"status": "sleeping"}), 422)


async def test_alert_dedup_and_transitions(service, kafka) -> None:
    async with service("notifier", run_consumers=False, **FAST) as svc:
        r = await rule(svc, name="csat-low", event_type="postsales.survey.*",
                       conditions={"data.score": {"lt": 3}, "type": {"eq": "postsales.survey.csat"}},
                       group_wait="1h", repeat_interval="1h")
        for i in range(3):
            await inject(svc, make_event("postsales.survey.csat", "acme", {"score": 1, "respondent": f"u{i}"}))
        await inject(svc, make_event("postsales.survey.csat", "acme", {"score": 5}))
        await inject(svc, make_event("postsales.survey.csat", "globex", {"score": 2}))
        listed = (await svc.client.get("/v1/alerts", params={"status": "firing", "rule_id": r["id"]})).json()["items"]
        assert sorted((a["subject"], a["event_count"]) for a in listed) == [("acme", 3), ("globex", 1)]
        acme = next(a for a in listed if a["subject"] == "acme")
        assert acme["labels"] == {"alertname": "csat-low", "severity": "warning", "subject": "acme"}
        url = f"/v1/alerts/{acme['id']}"
        assert_problem(await svc.client.post(url + "/resolve-now"), 404)
        ack = await svc.client.post(url + "/ack", json={"by": "csm@example.com"})
        assert ack.status_code == 200 and ack.json()["status"] == "acknowledged"
        assert ack.json()["acknowledged_by"] == "csm@example.com"
        assert_problem(await svc.client.post(url + "/ack"), 409)
        # Still active: a new matching event joins the acknowledged alert, not a new one.
        await inject(svc, make_event("postsales.survey.csat", "acme", {"score": 0}))
        assert (await svc.client.get(url)).json()["event_count"] == 4
        res = await svc.client.post(url + "/resolve", json={"reason": "called them"})
        assert res.status_code == 200 and res.json()["status"] == "resolved"
        assert_problem(await svc.client.post(url + "/resolve"), 409)
        assert_problem(await svc.client.post(url + "/ack"), 409)
        # After resolution the same condition opens a fresh alert.
        await inject(svc, make_event("postsales.survey.csat", "acme", {"score": 1}))
        firing = (await svc.client.get("/v1/alerts", params={"status": "firing", "subject": "acme"})).json()["items"]
        assert len(firing) == 1 and firing[0]["id"] != acme["id"]
        assert firing[0]["fingerprint"] == acme["fingerprint"]

        async def alert_events() -> list:
            evs = await kafka.events("postsales.alerts.v1", settle=0.3)
            return evs if len(evs) >= 4 else []

        from shared.testing import eventually
        evs = await eventually(alert_events)
        kinds = sorted((e.type, e.subject) for e in evs)
        assert kinds == [("postsales.alert.fired", "acme"), ("postsales.alert.fired", "acme"),
                         ("postsales.alert.fired", "globex"), ("postsales.alert.resolved", "acme")]
        resolved = next(e for e in evs if e.type == "postsales.alert.resolved")
        assert resolved.data["alert_id"] == acme["id"] and resolved.data["resolution"] == "called them"


async def test_silences_api(service) -> None:
    async with service("notifier", run_consumers=False, run_relay=False) as svc:
        c = svc.client
        end = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
        past = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
        body = {"matchers": [{"name": "subject", "value": "acme"}], "created_by": "me", "comment": "call",
                "ends_at": end}
        assert_problem(await c.post("/v1/silences", json={**body, "ends_at": past}), 422, "ends_at")
        assert_problem(await c.post("/v1/silences", json={**body, "matchers": []}), 422, "matchers")
        assert_problem(await c.post("/v1/silences", json={
            **body, "matchers": [{"name": "subject", "value": "(", "is_regex": True}]}), 422, "matchers.0.value")
        r = await c.post("/v1/silences", json=body)
        assert r.status_code == 201 and r.json()["status"] == "active"
        sid = r.json()["id"]
        assert (await c.delete(f"/v1/silences/{sid}")).status_code == 204
        assert (await c.get(f"/v1/silences/{sid}")).json()["status"] == "expired"
        assert (await c.get("/v1/silences", params={"status": "active"})).json()["items"] == []
        assert_problem(await c.delete("/v1/silences/nope"), 404)


async def test_openapi_documents_every_route(service) -> None:
    async with service("notifier", run_consumers=False, run_relay=False) as svc:
        spec = (await svc.client.get("/openapi.json")).json()
        for path in ("/v1/channels", "/v1/channels/{channel_id}/test", "/v1/rules/{rule_id}", "/v1/alerts",
                     "/v1/alerts/{alert_id}/ack", "/v1/alerts/{alert_id}/resolve", "/v1/silences",
                     "/v1/deliveries"):
            assert path in spec["paths"], path
        assert "put" in spec["paths"]["/v1/rules/{rule_id}"]
        assert "secret" not in spec["components"]["schemas"]["ChannelOut"]["properties"]
