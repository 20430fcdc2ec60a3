"""What the end-to-end modules share: usage events, the rollups they must produce, reads over HTTP."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import httpx

from shared.events.envelope import CloudEvent
from shared.testing.helpers import make_event

USAGE_TOPIC = "postsales.usage.v1"
FEEDBACK_TOPIC = "postsales.feedback.v1"


def usage_event(account: str, event_id: str, *, user: str, source: str = "/product/web",
                type: str = "usage.feature_used", feature: str | None = "reports", quantity: float = 1,
                at: dt.datetime | None = None) -> CloudEvent:
    data: dict[str, Any] = {"user_id": user, "quantity": quantity}
    if feature is not None:
        data["feature"] = feature
    return make_event(type, account, data, source=source, id=event_id, time=at or dt.datetime.now(dt.UTC))


def doc(event: CloudEvent) -> dict[str, Any]:
    """The event as a JSON document, for ``POST /v1/events``."""
    d: dict[str, Any] = json.loads(event.to_bytes())
    return d


def expected_usage(events: Iterable[CloudEvent]) -> dict[str, dict[str, dict[str, Any]]]:
    """account -> ISO day -> the rollup row the metrics service must show, counting each (source, id) once."""
    seen: set[tuple[str, str]] = set()
    out: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    users: dict[tuple[str, str], set[str]] = defaultdict(set)
    for ev in events:
        if (ev.source, ev.id) in seen:
            continue
        seen.add((ev.source, ev.id))
        day = ev.time.astimezone(dt.UTC).date().isoformat()
        row = out[ev.subject].setdefault(day, {"date": day, "events": 0.0, "event_count": 0, "active_users": 0,
                                               "by_type": defaultdict(float), "features": defaultdict(float)})
        q = float(ev.data.get("quantity", 1))
        row["events"] += q
        row["event_count"] += 1
        row["by_type"][ev.type] += q
        if ev.data.get("feature") is not None:
            row["features"][ev.data["feature"]] += q
        users[(ev.subject, day)].add(ev.data["user_id"])
    for (account, day), who in users.items():
        out[account][day]["active_users"] = len(who)
    for days in out.values():
        for row in days.values():
            row["by_type"] = dict(row["by_type"])
            row["features"] = dict(row["features"])
    return dict(out)


async def usage_rows(metrics: httpx.AsyncClient, account: str, start: dt.date, end: dt.date) -> dict[str, Any]:
    """The account's rollups by ISO day, in the shape of :func:`expected_usage`."""
    r = await metrics.get(f"/v1/accounts/{account}/usage", params={"from": start.isoformat(), "to": end.isoformat()})
    assert r.status_code == 200, r.text
    return {item["date"]: {k: item[k] for k in ("date", "events", "event_count", "active_users", "by_type",
                                                 "features")}
            for item in r.json()["items"]}
