"""What every command group shares: options, output, errors, and where the suite is.

Where things are comes, in this order, from a flag, an environment variable, ``data/suite.json``
(written by ``make run`` while it runs; see :mod:`deploy.cli.suitefile`), then a default. HTTP
commands have no default address: a token only goes to an address the operator named or the running
suite listed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Coroutine
from typing import Annotated, Any, TypeVar

import httpx
import typer
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from deploy.cli import suitefile
from shared.events.registry import TOPICS

SERVICES = ("handoff", "lifecycle", "metrics", "notifier")
DEFAULT_BOOTSTRAP = "127.0.0.1:9092"

Bootstrap = Annotated[str | None, typer.Option(
    "--bootstrap", envvar="KAFKA_BOOTSTRAP_SERVERS", show_default=False,
    help="Kafka bootstrap servers [default: the running `make run` suite's broker, else 127.0.0.1:9092].")]
Prefix = Annotated[str | None, typer.Option("--prefix", envvar="KAFKA_TOPIC_PREFIX", show_default=False,
                                            help="Topic prefix of the deployment [default: none].")]
JsonOut = Annotated[bool, typer.Option("--json", help="One JSON object per line instead of a table.")]
Token = Annotated[str | None, typer.Option("--token", envvar="POSTSALES_TOKEN", show_envvar=True,
                                           help="API token (prefer the environment variable) [default: the "
                                                "running `make run` suite's development token, for its own "
                                                "addresses only].")]

T = TypeVar("T")


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a Kafka/database coroutine; broker errors become a one-line message and exit code 1."""
    # aiokafka logs connection tracebacks on its own; the command reports the failure itself.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        return asyncio.run(coro)
    except KafkaError as exc:
        raise fail(f"Kafka: {type(exc).__name__}: {exc}") from None


def logical_topic(topic: str) -> str:
    topic = topic.removesuffix(".dlq")
    if topic not in TOPICS:
        raise fail(f"unknown topic '{topic}'; one of: {', '.join(TOPICS)}", code=2)
    return topic


def table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    typer.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def emit(rows: list[dict[str, Any]], columns: list[str], as_json: bool) -> None:
    if as_json:
        for r in rows:
            typer.echo(json.dumps(r, default=str))
    else:
        table(rows, columns)


# --- where the suite is ----------------------------------------------------------------------------

def kafka(bootstrap: str | None, prefix: str | None) -> tuple[str, str]:
    """Bootstrap servers and topic prefix: flag or env, else the running local suite, else defaults."""
    suite = suitefile.read() if bootstrap is None or prefix is None else None
    if bootstrap is None:
        bootstrap = suite.bootstrap if suite else DEFAULT_BOOTSTRAP
    if prefix is None:
        prefix = suite.topic_prefix if suite else ""
    return bootstrap, prefix


def suite_database_url(service: str) -> str | None:
    """The running local suite's database of ``service``, unless the environment names one."""
    if os.environ.get("DATABASE_URL") or os.environ.get(f"{service.upper()}_DATABASE_URL"):
        return None
    suite = suitefile.read()
    return suite.databases.get(service) if suite else None


def endpoint(service: str, url: str | None, token: str | None) -> tuple[str, str]:
    """The service's URL and the token to send it.

    The development token of the running suite is only sent to an address that suite listed; with
    no URL from a flag, the environment or the suite file, the command refuses instead of guessing.
    """
    suite = suitefile.read()
    if url is None:
        if suite is None or service not in suite.services:
            raise fail(f"where is the {service} service? pass --url, set POSTSALES_{service.upper()}_URL, "
                       "or start the suite with `make run` (it writes data/suite.json)", code=2)
        url = suite.services[service]
    if not token and suite is not None and suite.knows(url):
        token = suite.token()
    if not token:
        raise fail("no token: pass --token or set POSTSALES_TOKEN", code=2)
    return url.rstrip("/"), token


def http_client(url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def problem(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:300]}"
    if not isinstance(body, dict):
        return f"HTTP {response.status_code}"
    detail = body.get("detail") or body.get("title") or ""
    errors = "; ".join(f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg')}" for e in body.get("errors") or [])
    return f"HTTP {response.status_code}: {detail}" + (f" ({errors})" if errors else "")


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    await consumer._client.force_metadata_update()
    return [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
