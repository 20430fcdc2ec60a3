"""``postsales alerts``: follow the notifier's alerts."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import httpx
import typer

from deploy.cli.common import JsonOut, Token, endpoint, fail, http_client, problem

app = typer.Typer(help="Follow the notifier's alerts.", no_args_is_help=True)


def alert_line(alert: dict[str, Any]) -> str:
    return "  ".join(str(alert.get(k) or "-") for k in
                     ("created_at", "status", "severity", "subject", "rule_name", "id", "summary"))


def fetch_new_alerts(client: httpx.Client, status: str | None, seen: set[str], page_size: int,
                     max_pages: int = 10) -> list[dict[str, Any]]:
    """Unseen alerts, oldest first; pages back (newest first) until a page holds one already seen."""
    params: dict[str, Any] = {"limit": page_size}
    if status:
        params["status"] = status
    fresh: list[dict[str, Any]] = []
    for _ in range(max_pages):
        response = client.get("/v1/alerts", params=params)
        if response.status_code >= 400:
            raise fail(f"listing alerts refused: {problem(response)}")
        body = response.json()
        items = [a for a in body.get("items", []) if isinstance(a, dict)]
        new = [a for a in items if a.get("id") not in seen]
        fresh.extend(new)
        if len(new) < len(items) or not body.get("next_cursor") or not seen:
            break
        params["cursor"] = body["next_cursor"]
    return list(reversed(fresh))


@app.command("tail")
def alerts_tail(
    url: Annotated[str | None, typer.Option(
        envvar="POSTSALES_NOTIFIER_URL", show_default=False,
        help="The notifier service [default: the running `make run` suite's].")] = None,
    token: Token = None,
    status: Annotated[str | None, typer.Option(help="firing, acknowledged or resolved.")] = None,
    backlog: Annotated[int, typer.Option(min=0, max=500, help="Existing alerts to show first (newest).")] = 10,
    count: Annotated[int | None, typer.Option(min=1, help="Stop after printing this many alerts.")] = None,
    interval: Annotated[float, typer.Option(min=0.05, help="Seconds between polls.")] = 2.0,
    as_json: JsonOut = False,
) -> None:
    """Print alerts as they appear (polls GET /v1/alerts) until Ctrl-C or --count alerts were printed."""
    if status is not None and status not in ("firing", "acknowledged", "resolved"):
        raise fail("--status must be firing, acknowledged or resolved", code=2)
    url, token = endpoint("notifier", url, token)
    seen: set[str] = set()
    printed = 0
    first = True
    with http_client(url, token) as client:
        try:
            while True:
                try:
                    alerts = fetch_new_alerts(client, status, seen, page_size=max(backlog, 100) if first else 100)
                except httpx.HTTPError as exc:
                    if first:
                        raise fail(f"notifier at {url}: {type(exc).__name__}: {exc}") from None
                    typer.echo(f"warning: notifier unreachable ({type(exc).__name__}); retrying", err=True)
                    alerts = []
                shown = alerts[-backlog:] if first and backlog else ([] if first else alerts)
                seen.update(str(a.get("id")) for a in alerts)
                for alert in shown:
                    typer.echo(json.dumps(alert) if as_json else alert_line(alert))
                    printed += 1
                    if count is not None and printed >= count:
                        return
                first = False
                time.sleep(interval)
        except KeyboardInterrupt:
            return
