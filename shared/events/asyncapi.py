"""AsyncAPI 3.0 documents built from the event registry (never written by hand).

``python -m shared.events.asyncapi`` prints the whole suite's document (kept in ``deploy/asyncapi.json``);
each service serves the part for its own topics at ``/asyncapi.json``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any

from pydantic import TypeAdapter

from shared.events.envelope import CloudEvent
from shared.events.registry import EVENT_TYPES, TOPICS, USAGE_EVENT_TYPE, EventType

_USAGE = USAGE_EVENT_TYPE


def _message_name(event_type: str) -> str:
    return event_type.replace("postsales.", "").replace(".", "_").replace("*", "any")


def _message(et: EventType) -> dict[str, Any]:
    envelope = TypeAdapter(CloudEvent).json_schema(mode="serialization")
    envelope.pop("title", None)
    envelope["properties"]["type"] = {"const": et.name} if "*" not in et.name else {
        "type": "string", "pattern": r"^usage\.[A-Za-z0-9_.-]+$"}
    data = et.schema.model_json_schema(mode="serialization", ref_template="#/components/schemas/{model}")
    defs = data.pop("$defs", {})
    envelope["properties"]["data"] = data
    envelope["required"] = ["specversion", "id", "source", "type", "time", "subject", "data"]
    return {
        "name": et.name,
        "title": et.name,
        "summary": et.description,
        "contentType": "application/cloudevents+json",
        "payload": envelope,
        "correlationId": {"location": "$message.payload#/id"},
        "bindings": {"kafka": {"key": {"type": "string", "description": "the account id (CloudEvents subject)"}}},
        "x-defs": defs,
    }


def build(*, title: str = "Post-sales suite events", produces: Iterable[str] = TOPICS,
          consumes: Iterable[str] = ()) -> dict[str, Any]:
    """The AsyncAPI 3.0 document for the given topics (``send`` for produced, ``receive`` for consumed)."""
    produced, consumed = list(dict.fromkeys(produces)), list(dict.fromkeys(consumes))
    types = [*EVENT_TYPES.values(), _USAGE]
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for topic in dict.fromkeys([*produced, *consumed]):
        key = topic.replace(".", "_")
        topic_types = [t for t in types if t.topic == topic]
        channel_messages = {}
        for et in topic_types:
            msg = _message(et)
            schemas.update(msg.pop("x-defs"))
            name = _message_name(et.name)
            messages[name] = msg
            channel_messages[name] = {"$ref": f"#/components/messages/{name}"}
        channels[key] = {
            "address": topic,
            "description": f"Kafka topic `{topic}`; dead letters go to `{topic}.dlq`.",
            "messages": channel_messages,
        }
        refs = [{"$ref": f"#/channels/{key}/messages/{m}"} for m in channel_messages]
        if topic in produced:
            operations[f"send_{key}"] = {"action": "send", "channel": {"$ref": f"#/channels/{key}"},
                                         "messages": refs}
        if topic in consumed:
            operations[f"receive_{key}"] = {"action": "receive", "channel": {"$ref": f"#/channels/{key}"},
                                            "messages": refs}
    return {
        "asyncapi": "3.0.0",
        "info": {"title": title, "version": "1.0.0",
                 "description": "CloudEvents 1.0 structured-mode JSON on Kafka; key = account id."},
        "defaultContentType": "application/cloudevents+json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def main() -> None:
    json.dump(build(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
