"""The generated tables of ``docs/api.md``: configuration (from the settings classes) and the event
catalogue (from ``shared/events/registry.py``).

``python -m deploy.envdoc`` prints them; ``python -m deploy.envdoc --write`` replaces the blocks
between the ``env-table`` and ``event-table`` markers in ``docs/api.md``. A test fails when a settings
field or an event type is missing. Descriptions come from each field's ``description``; the few
fields without one get the text below.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import sys
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from shared.events.registry import EVENT_TYPES, TOPICS, USAGE_EVENT_TYPE, EventType
from shared.settings import ServiceSettings

SERVICES = ("handoff", "lifecycle", "metrics", "notifier", "console")
DOC = Path(__file__).parents[1] / "docs" / "api.md"
BLOCKS = ("env-table", "event-table")

# For fields declared without a description (the settings classes are the source of truth otherwise).
FALLBACK: dict[str, str] = {
    "kafka_bootstrap_servers": "Kafka bootstrap servers. `make run` starts an embedded broker when unset.",
    "kafka_topic_partitions": "Partitions of the topics a service creates (bounds consumer parallelism).",
    "postsales_data_dir": "Where SQLite files, the dev token, the channel-secret key file and `suite.json` live.",
    "host": "Interface the HTTP server binds.",
    "port": "HTTP port (default: the service's own, 8001-8004).",
    "log_level": "DEBUG, INFO, WARNING or ERROR; logs are JSON lines.",
    "outbox_poll_interval": "Seconds between outbox relay passes when idle.",
    "consumer_max_retries": "Retries of a failing event handler before the batch is split and the event dead-lettered.",
    "consumer_retry_backoff": "Seconds before the first handler retry (doubles per retry).",
    "consumer_batch_size": "Records fetched per consumer batch.",
    "default_lang": "Language of alert texts (en or ja).",
    "delivery_poll_interval": "Seconds between delivery worker passes when idle.",
    "delivery_max_attempts": "Attempts before a delivery is marked dead.",
    "delivery_concurrency_per_channel": "Deliveries sent at once to one channel.",
    "delivery_batch_size": "Deliveries claimed per worker pass.",
    "smtp_host": "SMTP server for email channels.",
    "smtp_port": "SMTP port.",
    "smtp_tls": "starttls, tls or none.",
    "smtp_from": "Sender address of alert emails.",
    "smtp_username": "SMTP login (optional).",
    "smtp_password": "SMTP password (optional).",
    "scheduler_batch_size": "Rows handled per scheduler transaction.",
}


def settings_class(service: str) -> type[ServiceSettings]:
    cls: type[ServiceSettings] = importlib.import_module(f"services.{service}.settings").Settings
    return cls


def default_of(name: str, field: FieldInfo) -> str:
    if field.default_factory is not None:
        value: Any = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "(required)"
    else:
        value = field.default
    if name == "port" and not value:
        return "8001-8004"
    if value is None or value == "" or value == {} or value == []:
        return "(unset)" if value is None or value == "" else f"`{json.dumps(value)}`"
    if hasattr(value, "model_dump"):
        value = value.model_dump()
    if isinstance(value, list):
        value = [v.model_dump() if hasattr(v, "model_dump") else v for v in value]
        if all(isinstance(v, str | int) for v in value):
            return "`" + ",".join(str(v) for v in value) + "`"
        return f"`{json.dumps(value, default=str)}`"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, dt.timedelta):
        seconds = int(value.total_seconds())
        return f"`{seconds // 86400}d`" if seconds % 86400 == 0 else f"`{seconds}s`"
    return f"`{value}`"


def describe(name: str, field: FieldInfo) -> str:
    text = field.description or FALLBACK.get(name, "")
    return text.replace("|", "\\|").replace("\n", " ")


def rows(fields: dict[str, FieldInfo], variable: Any) -> list[str]:
    return [f"| `{variable(name)}` | {default_of(name, f)} | {describe(name, f)} |" for name, f in fields.items()]


def tables() -> str:
    shared = ServiceSettings.model_fields
    out = ["### Shared settings (every service)", "",
           "Each can be set for one service only with its name as prefix: `METRICS_LOG_LEVEL=DEBUG` wins over "
           "`LOG_LEVEL` for metrics.", "",
           "| variable | default | what it does |", "|---|---|---|",
           *rows(dict(shared), lambda n: n.upper()), ""]
    for service in SERVICES:
        own = {n: f for n, f in settings_class(service).model_fields.items() if n not in shared}
        if not own:
            continue
        out += [f"### {service}", "",
                f"Each is also read without the `{service.upper()}_` prefix; the prefixed name wins.", "",
                "| variable | default | what it does |", "|---|---|---|",
                *rows(own, lambda n, s=service: f"{s.upper()}_{n.upper()}"), ""]
    return "\n".join(out).rstrip() + "\n"


def data_fields(event_type: EventType) -> str:
    """``name`` (required) and ``name?`` (optional) of the payload's top-level fields."""
    names = [(f.alias or n) + ("" if f.is_required() else "?") for n, f in event_type.schema.model_fields.items()]
    return ", ".join(f"`{n}`" for n in names)


def events() -> str:
    out = ["| topic | type | what happened | `data` fields (`?`: optional) |", "|---|---|---|---|"]
    for topic in TOPICS:
        types = [t for t in [*EVENT_TYPES.values(), USAGE_EVENT_TYPE] if t.topic == topic]
        out += [f"| `{topic}` | `{t.name}` | {t.description} | {data_fields(t)} |" for t in types]
    return "\n".join(out) + "\n"


GENERATORS = {"env-table": tables, "event-table": events}


def markers(block: str) -> tuple[str, str]:
    return f"<!-- {block}:start (python -m deploy.envdoc --write) -->", f"<!-- {block}:end -->"


def render(text: str) -> str:
    for block in BLOCKS:
        start, end = markers(block)
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{start}\n{GENERATORS[block]()}{end}{tail}"
    return text


def write(doc: Path = DOC) -> bool:
    """Replace the generated blocks of ``doc``; True when it changed."""
    text = doc.read_text()
    new = render(text)
    if new != text:
        doc.write_text(new)
    return new != text


def main() -> int:
    if "--write" in sys.argv[1:]:
        print(f"{DOC}: {'updated' if write() else 'up to date'}")
    else:
        print(tables() + "\n" + events(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
