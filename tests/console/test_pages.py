"""The console over the four real services (in this process, one real broker): sign-in, pages, actions,
security, degraded services. Everything is seeded through the public APIs."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
import re
import time

import httpx
import pytest

from services.console.session import Session, SessionBox
from shared.testing.helpers import eventually
from tests.console.support import (
    OWNER,
    OWNER_TOKEN,
    READONLY_TOKEN,
    SESSION_KEY,
    account_body,
    csrf_of,
    handoff_body,
    post_form,
    sign_in,
    usage_events,
)


async def create_accounts(four, *bodies) -> None:
    for body in bodies:
        r = await four["lifecycle"].client.post("/v1/accounts", json=body)
        assert r.status_code == 201, r.text


async def firing_alert(four, account_id: str) -> dict:
    """A rule that fires on every account creation, and the alert it raised for ``account_id``."""
    r = await four["notifier"].client.post("/v1/rules", json={
        "name": "new-account", "event_type": "postsales.account.created", "severity": "warning"})
    assert r.status_code == 201, r.text
    await create_accounts(four, account_body(account_id, "Alerted Co", arr="5000.00"))

    async def fired():
        r = await four["notifier"].client.get("/v1/alerts", params={"subject": account_id, "status": "firing"})
        return r.json()["items"]
    return (await eventually(fired, timeout=30, message="alert fired"))[0]


def rows_of(html: str) -> list[str]:
    """Account ids in portfolio order."""
    return re.findall(r'<a href="/accounts/([^"]+)">', html)


async def test_sign_in_needs_a_known_token_and_keeps_it_out_of_the_cookie(console, four, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    await create_accounts(four, account_body("acme", "Acme"))
    async with console() as client:
        r = await client.get("/accounts/x")
        assert r.status_code == 303 and r.headers["location"] == "/signin?next=/accounts/x"
        page = await client.get("/signin")
        assert 'name="token"' in page.text and 'type="password"' in page.text
        bad = await client.post("/signin", data={"csrf": csrf_of(page.text), "token": "not-a-known-token-000000"})
        assert bad.status_code == 401 and "not known" in bad.text
        r = await sign_in(client)
        cookie = r.headers["set-cookie"]
        assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower() and "Path=/" in cookie
        value = client.cookies["ps_console"]
        # No trace of the token in the cookie, encoded any usual way (checked without decrypting it).
        for form in (OWNER_TOKEN, base64.b64encode(OWNER_TOKEN.encode()).decode(),
                     base64.urlsafe_b64encode(OWNER_TOKEN.encode()).decode().rstrip("="),
                     hashlib.sha256(OWNER_TOKEN.encode()).hexdigest(), OWNER_TOKEN[:12]):
            assert form not in value
        assert OWNER_TOKEN not in str(r.headers) and OWNER_TOKEN not in r.headers["location"]
        home = await client.get("/")
        assert home.status_code == 200 and OWNER in home.text and OWNER_TOKEN not in home.text
        assert (await client.get("/accounts/acme")).status_code == 200
        logged = "\n".join(f"{r.getMessage()} {r.args!r} {getattr(r, '__dict__', {})!r}" for r in caplog.records)
        assert "signed in key" in logged and "sign-in refused" in logged
        assert OWNER_TOKEN not in logged and "not-a-known-token" not in logged
        # Sign-out needs the form's token, and ends the session.
        assert (await client.post("/signout", data={})).status_code == 403
        r = await post_form(client, "/", "/signout")
        assert r.headers["location"] == "/signin" and (await client.get("/")).status_code == 303
        await sign_in(client)
        value = client.cookies["ps_console"]
        # A cookie altered by one character is not a session.
        client.cookies.set("ps_console", value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1])
        assert (await client.get("/")).status_code == 303


async def test_expired_and_revoked_sessions_return_to_sign_in(console) -> None:
    box = SessionBox(SESSION_KEY)
    async with console() as client:
        expired = Session(token=OWNER_TOKEN, expires=time.time() - 1)
        client.cookies.set("ps_console", box.seal(expired))
        r = await client.get("/")
        assert r.status_code == 303 and r.headers["location"] == "/signin"
        assert "session ended" in (await client.get("/signin")).text
    # A token the console accepts but the services do not (revoked there): the first call ends the session.
    extra = "console-only-token-0123456789abc"
    from tests.console.support import KEYS
    async with console(postsales_api_keys={**KEYS, extra: ["admin"]}) as client:
        await sign_in(client, extra)
        r = await client.get("/alerts")
        assert r.status_code == 303 and r.headers["location"] == "/signin"


async def test_every_post_without_a_valid_csrf_token_is_refused(console, four) -> None:
    alert = await firing_alert(four, "csrf-co")
    async with console() as client:
        page = await client.get("/signin")
        assert (await client.post("/signin", data={"token": OWNER_TOKEN})).status_code == 403
        assert (await client.post("/signin", data={"token": OWNER_TOKEN, "csrf": "forged"})).status_code == 403
        assert csrf_of(page.text)
        await sign_in(client)
        r = await client.post(f"/alerts/{alert['id']}/ack", data={})
        assert r.status_code == 403 and "form expired" in r.text
        r = await client.post(f"/alerts/{alert['id']}/ack", data={"csrf": "x" * 32})
        assert r.status_code == 403
        # The pre-sign-in CSRF token does not survive sign-in.
        r = await client.post(f"/alerts/{alert['id']}/ack", data={"csrf": csrf_of(page.text)})
        assert r.status_code == 403
        got = await four["notifier"].client.get(f"/v1/alerts/{alert['id']}")
        assert got.json()["status"] == "firing"
        r = await post_form(client, "/alerts", f"/alerts/{alert['id']}/ack")
        assert r.status_code == 303
        got = await four["notifier"].client.get(f"/v1/alerts/{alert['id']}")
        assert got.json()["status"] == "acknowledged" and got.json()["acknowledged_by"] == OWNER


async def test_portfolio_orders_filters_and_pages(console, four) -> None:
    await create_accounts(four, *[account_body(f"acct-{i:02d}", f"Account {i:02d}", arr=f"{1000 * (i + 1)}.00",
                                               stage="onboarding" if i % 2 else "adoption",
                                               owner=OWNER if i < 5 else "other@example.com")
                                  for i in range(55)])
    async with console() as client:
        await sign_in(client)
        first = await client.get("/")
        assert first.status_code == 200
        ids = rows_of(first.text)
        # No risk model yet: ARR at risk is unknown everywhere, so ARR decides, largest first; 50 a page.
        assert ids == [f"acct-{i:02d}" for i in range(54, 4, -1)]
        assert "55" in first.text and 'rel="next"' in first.text
        second = await client.get("/", params={"page": 2})
        assert rows_of(second.text) == [f"acct-{i:02d}" for i in range(4, -1, -1)]
        only = await client.get("/", params={"q": "account 07"})
        assert rows_of(only.text) == ["acct-07"]
        onboarding = rows_of((await client.get("/", params={"stage": "onboarding"})).text)
        assert onboarding and all(int(i[-2:]) % 2 for i in onboarding)
        mine = rows_of((await client.get("/", params={"owner": OWNER})).text)
        assert sorted(mine) == [f"acct-{i:02d}" for i in range(5)]
        by_name = rows_of((await client.get("/", params={"sort": "name"})).text)
        assert by_name[:3] == ["acct-00", "acct-01", "acct-02"]
        asc = rows_of((await client.get("/", params={"sort": "arr", "dir": "asc"})).text)
        assert asc[:2] == ["acct-00", "acct-01"]


async def test_account_360_after_accepting_a_handoff_in_the_console(console, four) -> None:
    h = await four["handoff"].client.post("/v1/handoffs", json=handoff_body("globex", "Globex"))
    assert h.status_code == 201, h.text
    hid = h.json()["id"]
    assert (await four["handoff"].client.post(f"/v1/handoffs/{hid}/submit", json={})).status_code == 200
    async with console() as client:
        await sign_in(client)
        queue = await client.get("/handoffs")
        assert "Globex" in queue.text and f"/handoffs/{hid}" in queue.text
        detail = await client.get(f"/handoffs/{hid}")
        assert "SSO with Okta" in detail.text and f'src="/handoffs/{hid}/document"' in detail.text
        doc = await client.get(f"/handoffs/{hid}/document")
        assert doc.status_code == 200 and "Globex" in doc.text
        assert "sandbox" in doc.headers["content-security-policy"]
        r = await post_form(client, f"/handoffs/{hid}", f"/handoffs/{hid}/accept")
        assert r.status_code == 303
        assert "Handoff accepted" in (await client.get(r.headers["location"])).text
        assert (await four["handoff"].client.get(f"/v1/handoffs/{hid}")).json()["status"] == "accepted"

        async def onboarded():
            return (await four["lifecycle"].client.get("/v1/accounts/globex")).status_code == 200
        await eventually(onboarded, timeout=30, message="lifecycle created the account")
        r = await four["metrics"].client.post("/v1/events", json=usage_events("globex"))
        assert r.status_code == 202, r.text

        async def scored():
            r = await four["metrics"].client.get("/v1/accounts/globex/usage")
            return r.status_code == 200 and len(r.json()["items"]) >= 15
        await eventually(scored, timeout=30, message="usage rolled up")
        page = await client.get("/accounts/globex", params={"days": 90})
        assert page.status_code == 200
        html = page.text
        assert "<h1>Globex" in html and "onboarding" in html
        assert 'class="grid compact health-components"' in html and ">usage<" in html
        assert html.count("<svg") >= 4 and 'role="img"' in html and "<title" in html
        assert "SSO with Okta before go-live" in html  # the promise ledger and its task
        assert "handoff.accepted" in html or "account.created" in html  # the timeline
        assert "90 days from" in html  # the 90-day usage chart describes itself


async def test_a_read_only_token_cannot_act(console, four) -> None:
    alert = await firing_alert(four, "ro-co")
    async with console() as client:
        await sign_in(client, READONLY_TOKEN)
        page = await client.get("/accounts/ro-co")
        assert "Alerted Co" in page.text and f"/alerts/{alert['id']}/ack" not in page.text  # no button offered
        r = await post_form(client, "/alerts", f"/alerts/{alert['id']}/ack")
        assert r.status_code == 303
        after = await client.get(r.headers["location"])
        assert "lacks the &#39;alerts:write&#39; scope" in after.text
        assert (await four["notifier"].client.get(f"/v1/alerts/{alert['id']}")).json()["status"] == "firing"
        r = await post_form(client, "/alerts", f"/alerts/{alert['id']}/silence", hours="4")
        assert "alerts:write" in (await client.get(r.headers["location"])).text
        assert (await four["notifier"].client.get("/v1/silences")).json()["items"] == []


async def test_no_page_reflects_unescaped_input(console, four) -> None:
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    await create_accounts(four, account_body("evil-co", evil, owner='"><svg onload=alert(2)>'))
    async with console() as client:
        await sign_in(client)
        for path, params in [("/", {}), ("/", {"q": evil}), ("/accounts/evil-co", {}), ("/renewals", {}),
                             ("/worklist", {"owner": evil}), ("/signin", {"next": evil})]:
            r = await client.get(path, params=params)
            assert "<script" not in r.text and "<img src=x" not in r.text and "<svg onload" not in r.text, path
        portfolio = (await client.get("/")).text
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in portfolio
        r = await client.get("/" + "%3Cscript%3Ealert(1)%3C/script%3E")
        assert r.status_code == 404 and "<script>" not in r.text


async def test_pages_render_and_name_a_service_that_is_down(console, four) -> None:
    await create_accounts(four, account_body("acme", "Acme"))
    async with console(down={"metrics"}) as client:
        await sign_in(client)
        home = await client.get("/")
        assert home.status_code == 200 and "Acme" in home.text
        assert re.search(r'class="banner down"[^>]*><strong>metrics</strong> is not reachable', home.text)
        page = await client.get("/accounts/acme")
        assert page.status_code == 200 and "<h1>Acme" in page.text and "Promise ledger" in page.text
        assert "<strong>metrics</strong> is not reachable" in page.text
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"] == {
            "handoff": "ok", "lifecycle": "ok", "metrics": "down", "notifier": "ok"}
    async with console() as client:
        assert (await client.get("/readyz")).status_code == 200


async def test_missing_endpoints_show_not_available_yet(four) -> None:
    """Endpoints other services are still adding (risk, playbook runs, the worklist) answer 404: each panel says
    so and the rest of the page renders."""
    from services.console.app import create_app
    from tests.console.conftest import console_settings

    await create_accounts(four, account_body("acme", "Acme"))

    def lacking(app):
        inner = httpx.ASGITransport(app=app)

        async def handler(request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith(("/risk", "/playbook-runs")) or request.url.path == "/v1/tasks":
                return httpx.Response(404, json={"title": "Not found", "status": 404,
                                                 "detail": f"no route for GET {request.url.path}"})
            return await inner.handle_async_request(request)
        return httpx.MockTransport(handler)

    transports = {name: lacking(svc.app) for name, svc in four.items()}
    app = create_app(console_settings(), transports=transports)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://console.test") as client:
        await sign_in(client)
        page = await client.get("/accounts/acme")
        assert page.status_code == 200 and "<h1>Acme" in page.text
        assert page.text.count("Not available yet") == 2  # risk and playbook runs
        home = await client.get("/")
        assert "Acme" in home.text and "Churn risk: Not available yet" in home.text
        work = await client.get("/worklist")
        assert work.status_code == 200 and "Not available yet" in work.text


async def test_security_headers_and_no_inline_script_or_style(console, four) -> None:
    await create_accounts(four, account_body("acme", "Acme"))
    async with console() as client:
        await sign_in(client)
        for path in ("/", "/accounts/acme", "/alerts", "/handoffs", "/renewals", "/worklist", "/signin"):
            r = await client.get(path)
            csp = r.headers["content-security-policy"]
            assert "default-src 'self'" in csp and "script-src 'self'" in csp and "'unsafe-inline'" not in csp
            assert "frame-ancestors 'none'" in csp
            assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"
            assert r.headers["cache-control"] == "no-store"
            assert "<script" not in r.text and " style=" not in r.text and "http://" not in r.text.replace(
                'xmlns="http://www.w3.org/2000/svg"', ""), path
        css = await client.get("/static/console.css")
        assert css.status_code == 200 and "text/css" in css.headers["content-type"]


async def test_japanese_by_accept_language_and_by_the_switch(console, four) -> None:
    async with console() as client:
        await sign_in(client)
        ja = await client.get("/", headers={"Accept-Language": "ja-JP,ja;q=0.9,en;q=0.5"})
        assert '<html lang="ja">' in ja.text and "ポートフォリオ" in ja.text
        r = await client.get("/lang/en", params={"next": "/alerts"})
        assert r.status_code == 303 and r.headers["location"] == "/alerts"
        en = await client.get("/", headers={"Accept-Language": "ja"})
        assert '<html lang="en">' in en.text and "Portfolio" in en.text
        r = await client.get("/lang/ja", params={"next": "https://evil.example/"})
        assert r.headers["location"] == "/"
        assert "ポートフォリオ" in (await client.get("/")).text


async def test_worklist_shows_the_owners_tasks(console, four) -> None:
    await create_accounts(four, account_body("acme", "Acme"))
    r = await four["lifecycle"].client.post("/v1/accounts/acme/tasks", json={
        "title": "Call the champion", "owner": OWNER,
        "due_date": (dt.date.today() - dt.timedelta(days=3)).isoformat()})
    assert r.status_code == 201, r.text
    async with console() as client:
        await sign_in(client)
        page = await client.get("/worklist")
        assert page.status_code == 200
        if "Not available yet" in page.text:  # GET /v1/tasks is not on this branch yet
            pytest.skip("lifecycle has no GET /v1/tasks yet")
        assert "Call the champion" in page.text and "Overdue" in page.text


async def test_return_a_handoff_with_a_reason_resolve_and_silence_alerts(console, four) -> None:
    h = await four["handoff"].client.post("/v1/handoffs", json=handoff_body("initech", "Initech"))
    hid = h.json()["id"]
    assert (await four["handoff"].client.post(f"/v1/handoffs/{hid}/submit", json={})).status_code == 200
    alert = await firing_alert(four, "silence-co")
    async with console() as client:
        await sign_in(client)
        r = await post_form(client, f"/handoffs/{hid}", f"/handoffs/{hid}/return", reason="   ")
        assert "required" in (await client.get(r.headers["location"])).text
        assert (await four["handoff"].client.get(f"/v1/handoffs/{hid}")).json()["status"] == "submitted"
        r = await post_form(client, f"/handoffs/{hid}", f"/handoffs/{hid}/return",
                            reason="Renewal date contradicts the order form")
        page = await client.get(r.headers["location"])
        assert "Handoff returned" in page.text and "Renewal date contradicts the order form" in page.text
        got = (await four["handoff"].client.get(f"/v1/handoffs/{hid}")).json()
        assert got["status"] == "returned" and got["return_reason"] == "Renewal date contradicts the order form"

        r = await post_form(client, "/alerts", f"/alerts/{alert['id']}/silence", hours="24")
        assert "Alert silenced" in (await client.get(r.headers["location"])).text
        silences = (await four["notifier"].client.get("/v1/silences")).json()["items"]
        assert len(silences) == 1 and silences[0]["created_by"] == OWNER
        assert {(m["name"], m["value"]) for m in silences[0]["matchers"]} == {
            ("alertname", "new-account"), ("subject", "silence-co")}
        ends = dt.datetime.fromisoformat(silences[0]["ends_at"].replace("Z", "+00:00"))
        assert dt.timedelta(hours=23) < ends - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=24)

        r = await post_form(client, "/alerts", f"/alerts/{alert['id']}/resolve", reason="called the customer")
        assert "Alert resolved" in (await client.get(r.headers["location"])).text
        got = (await four["notifier"].client.get(f"/v1/alerts/{alert['id']}")).json()
        assert got["status"] == "resolved" and got["resolved_by"] == OWNER
        resolved = await client.get("/alerts", params={"status": "resolved"})
        assert "silence-co" in resolved.text
