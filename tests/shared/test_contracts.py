"""Documents generated from code: AsyncAPI from the registry, offline API docs."""

from __future__ import annotations

import json
import re
from pathlib import Path

from shared.events import asyncapi
from shared.events.registry import EVENT_TYPES, TOPICS, lookup

ROOT = Path(__file__).parents[2]


def test_committed_asyncapi_matches_the_registry() -> None:
    committed = json.loads((ROOT / "deploy" / "asyncapi.json").read_text())
    assert committed == json.loads(json.dumps(asyncapi.build())), (
        "deploy/asyncapi.json is stale: run `python -m shared.events.asyncapi > deploy/asyncapi.json`")


def test_asyncapi_lists_every_topic_and_type_with_its_payload_schema() -> None:
    doc = asyncapi.build()
    assert doc["asyncapi"] == "3.0.0"
    assert {c["address"] for c in doc["channels"].values()} == set(TOPICS)
    names = {m["name"] for m in doc["components"]["messages"].values()}
    assert names == set(EVENT_TYPES) | {"usage.*"}
    for msg in doc["components"]["messages"].values():
        et = lookup(msg["name"] if msg["name"] != "usage.*" else "usage.login")
        assert et is not None
        data = msg["payload"]["properties"]["data"]
        required = set(data.get("required", []))
        model_required = {n for n, f in et.schema.model_fields.items() if f.is_required()}
        aliases = {n: (f.alias or n) for n, f in et.schema.model_fields.items()}
        assert required == {aliases[n] for n in model_required}, msg["name"]
    refs = re.findall(r'"\$ref": "#/components/schemas/(\w+)"', json.dumps(doc))
    assert set(refs) <= set(doc["components"]["schemas"])


async def test_docs_are_served_offline_and_asyncapi_per_service(demo_service) -> None:
    async with demo_service(run_relay=False, run_consumers=False) as svc:
        anon = svc.client_for(None)
        for path in ("/docs", "/redoc"):
            html = (await anon.get(path)).text
            urls = re.findall(r'(?:src|href)=["\']([^"\']+)', html) + re.findall(r'url: ?["\']([^"\']+)', html)
            assert urls and all(u.startswith("/") for u in urls), urls
            for u in urls:
                if u.startswith("/docs-assets/"):
                    assert (await anon.get(u)).status_code == 200
        assert "fonts.googleapis" not in (await anon.get("/redoc")).text
        doc = (await anon.get("/asyncapi.json")).json()
        ops = doc["operations"]
        assert ops["receive_postsales_lifecycle_v1"]["action"] == "receive"
        assert not any(k.startswith("send_") for k in ops)  # the demo produces nothing it declares


async def test_trace_context_flows_from_request_to_event_to_consumer_logs(demo_service, kafka, caplog) -> None:
    import logging

    from shared.events import CloudEvent
    from shared.events.registry import LIFECYCLE_TOPIC
    from shared.observability import _ContextFilter
    from shared.testing import eventually
    from tests.shared import demo
    from tests.shared.conftest import count

    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    caplog.set_level(logging.DEBUG, logger="postsales.consumer")
    caplog.handler.addFilter(_ContextFilter("demo"))
    async with demo_service() as svc:
        r = await svc.client.post("/v1/notes", json={"id": "n1", "account_id": "acme", "text": "x"},
                                  headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
        assert r.status_code == 201
        records = await eventually(lambda: kafka.read_all(LIFECYCLE_TOPIC, settle=0.1))
        event = CloudEvent.from_bytes(records[0].value)
        assert (event.model_extra or {})["traceparent"].split("-")[1] == trace_id

        async def applied() -> bool:
            return await count(svc, demo.Applied) == 1

        await eventually(applied)
    consumer_logs = [r for r in caplog.records if r.name == "postsales.consumer" and "applied" in r.getMessage()]
    assert consumer_logs and consumer_logs[0].trace_id == trace_id
    assert consumer_logs[0].event_id == event.id
