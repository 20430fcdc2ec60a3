"""``postsales recompute``: rebuild the metrics service's rollups for a period."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

import httpx
import typer

from deploy.cli.common import Token, endpoint, fail, http_client, problem


def parse_date(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise fail(f"{option} must be a date like 2026-11-01, not '{value}'", code=2) from None


def recompute(
    from_: Annotated[str, typer.Option("--from", help="First UTC day (YYYY-MM-DD), inclusive.")],
    to: Annotated[str, typer.Option("--to", help="Last UTC day (YYYY-MM-DD), inclusive.")],
    account: Annotated[str | None, typer.Option(help="Only this account.")] = None,
    url: Annotated[str | None, typer.Option(
        envvar="POSTSALES_METRICS_URL", show_default=False,
        help="The metrics service [default: the running `make run` suite's].")] = None,
    token: Token = None,
) -> None:
    """Rebuild the metrics service's daily rollups for a period from the raw events and re-score health."""
    start, end = parse_date(from_, "--from"), parse_date(to, "--to")
    if start > end:
        raise fail("--from must not be after --to", code=2)
    body: dict[str, Any] = {"from": start.isoformat(), "to": end.isoformat()}
    if account:
        body["account_id"] = account
    url, token = endpoint("metrics", url, token)
    try:
        with http_client(url, token) as client:
            response = client.post("/v1/recompute", json=body)
    except httpx.HTTPError as exc:
        raise fail(f"metrics service at {url}: {type(exc).__name__}: {exc}") from None
    if response.status_code >= 400:
        raise fail(f"recompute refused: {problem(response)}")
    typer.echo(json.dumps(response.json(), indent=2))
