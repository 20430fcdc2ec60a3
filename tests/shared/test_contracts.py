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
