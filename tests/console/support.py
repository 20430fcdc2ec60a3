"""What the console tests share: keys, seeding through the public APIs, a signed-in console client."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

import httpx

from shared.testing.helpers import ADMIN_TOKEN, TEST_API_KEYS

OWNER = "csm.jane@example.com"
OWNER_TOKEN = "test-console-jane-token-0123456789"
READONLY_TOKEN = "test-console-readonly-token-01234"
ALL_READ = ["handoff:read", "lifecycle:read", "metrics:read", "alerts:read"]
ALL_WRITE = ["handoff:write", "lifecycle:write", "alerts:write", "events:write"]
KEYS: dict[str, Any] = {
    **TEST_API_KEYS,
    OWNER_TOKEN: {"scopes": ALL_READ + ALL_WRITE, "owner": OWNER},
    READONLY_TOKEN: {"scopes": ALL_READ, "owner": "viewer@example.com"},
}
SESSION_KEY = "console-tests-session-key-Zq8vR2mX7pL4wN9bK3"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    m = CSRF.search(html)
    assert m, "the page has no CSRF field"
    return m.group(1)


async def sign_in(client: httpx.AsyncClient, token: str = OWNER_TOKEN) -> httpx.Response:
    page = await client.get("/signin")
    r = await client.post("/signin", data={"csrf": csrf_of(page.text), "token": token})
    assert r.status_code == 303, r.text
    return r


async def post_form(client: httpx.AsyncClient, page_path: str, action: str, **fields: str) -> httpx.Response:
    """Submit a form the way a browser would: the CSRF token comes from the page that shows the form."""
    page = await client.get(page_path)
    assert page.status_code == 200, page.text
    return await client.post(action, data={"csrf": csrf_of(page.text), **fields})


def account_body(account_id: str, name: str, *, arr: str = "120000.00", owner: str = OWNER,
                 renewal_in_days: int = 60, stage: str = "adoption", segment: str = "enterprise") -> dict[str, Any]:
    today = dt.date.today()
    return {"id": account_id, "name": name, "segment": segment, "plan": "scale", "owner": owner, "seats": 50,
            "arr": arr, "currency": "EUR", "contract_start": (today - dt.timedelta(days=300)).isoformat(),
            "renewal_date": (today + dt.timedelta(days=renewal_in_days)).isoformat(), "stage": stage}


def handoff_body(external_id: str, name: str) -> dict[str, Any]:
    today = dt.date.today()
    return {
        "account": {"external_id": external_id, "name": name, "segment": "mid-market", "plan": "growth",
                    "seats": 40, "arr": "48000.00", "currency": "EUR",
                    "contract_start": today.isoformat(),
                    "renewal_date": (today + dt.timedelta(days=365)).isoformat()},
        "crm_opportunity_id": f"OPP-{uuid.uuid4().hex[:8]}",
        "goals": ["Go live in 60 days"],
        "commitments": [{"title": "SSO with Okta before go-live", "kind": "integration",
                         "due_date": (today + dt.timedelta(days=30)).isoformat()}],
        "stakeholders": [{"name": "Hanako Yamada", "role": "VP Ops", "email": "hanako@example.com", "champion": True}],
        "presales_owner": "ae.sato@example.com", "postsales_owner": OWNER,
    }


def usage_events(account_id: str, days: int = 20, per_day: int = 3) -> list[dict[str, Any]]:
    now = dt.datetime.now(dt.UTC)
    out = []
    for d in range(days):
        for i in range(per_day + d % 3):
            out.append({"specversion": "1.0", "id": f"{account_id}-{d}-{i}", "source": "/tests/console",
                        "type": "usage.feature_used", "subject": account_id,
                        "time": (now - dt.timedelta(days=d, minutes=i)).isoformat(),
                        "data": {"user_id": f"u{i}", "feature": "reports", "quantity": 1}})
    return out


def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}
