"""The console in a real headless Chromium (Debian's, driven by Playwright) over the whole suite running as
processes, exactly as ``make run`` starts it. A missing browser fails this test: ``make test`` installs
chromium (set POSTSALES_SKIP_BROWSER=1 to skip it knowingly on a machine without one).

Screenshots land in the pytest tmp dir (and in $CONSOLE_SCREENSHOT_DIR when set, e.g. docs/img).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.events.broker import free_port
from shared.testing.suite import SERVICES, ServiceProcess, Suite
from tests.console.support import KEYS, OWNER, OWNER_TOKEN, SESSION_KEY, account_body, handoff_body, usage_events

pytestmark = pytest.mark.db_independent

CHROMIUM = "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else shutil.which("chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]
FAST_ENV = {"CONSUMER_RETRY_BACKOFF": "0.05", "METRICS_HEALTH_INTERVAL": "0.3", "NOTIFIER_EVALUATION_INTERVAL": "0.2"}

ACCOUNTS = [  # id, name, ARR, stage, owner, days to renewal
    ("northwind", "Northwind Traders", "480000.00", "renewal", OWNER, 40),
    ("kobe-steelworks", "Kobe Steelworks", "310000.00", "adoption", OWNER, 150),
    ("initech", "Initech", "220000.00", "expansion", "csm.max@example.com", 75),
    ("umbrella", "Umbrella Health", "150000.00", "adoption", OWNER, 25),
    ("hooli", "Hooli", "96000.00", "onboarding", "csm.max@example.com", 300),
    ("stark", "Stark Logistics", "64000.00", "adoption", OWNER, 110),
]


def poll(check: Callable[[], Any], *, timeout: float = 60, message: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} not met within {timeout}s")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def chromium() -> str:
    if CHROMIUM is None:
        if os.environ.get("POSTSALES_SKIP_BROWSER") == "1":
            pytest.skip("no chromium and POSTSALES_SKIP_BROWSER=1")
        pytest.fail("Debian's chromium is not installed (`make test` installs it; apt-get install chromium)")
    return CHROMIUM


@pytest.fixture(scope="module")
def stack(database_factory, tmp_path_factory) -> Iterator[tuple[Suite, ServiceProcess]]:
    """The four services and the console as processes on their own broker and databases."""
    suite = Suite(root=tmp_path_factory.mktemp("console-suite"),
                  database_urls={name: database_factory.new(name) for name in SERVICES},
                  extra_env=FAST_ENV | {"POSTSALES_API_KEYS": json.dumps(KEYS)})
    console: ServiceProcess | None = None
    try:
        suite.start()
        env = dict(suite.services["handoff"].env)
        env.pop("DATABASE_URL", None)
        port = free_port()
        env |= {"CONSOLE_PORT": str(port), "CONSOLE_SESSION_KEY": SESSION_KEY, "LOG_LEVEL": "INFO"}
        env |= {f"CONSOLE_{name.upper()}_URL": suite.url(name) for name in SERVICES}
        console = ServiceProcess("console", port, env, suite.root / "console.log")
        console.start()
        console.wait_ready(120)
        seed(suite)
        yield suite, console
    finally:
        if console is not None:
            console.stop()
        suite.stop()


def seed(suite: Suite) -> None:
    headers = {"Authorization": f"Bearer {OWNER_TOKEN}"}
    with httpx.Client(headers=headers, timeout=30) as http:
        def url(name: str, path: str) -> str:
            return suite.url(name) + path
        r = http.post(url("notifier", "/v1/rules"), json={
            "name": "renewal-watch", "event_type": "postsales.account.created", "severity": "warning",
            "conditions": {"data.stage": {"in": ["renewal"]}}})
        assert r.status_code == 201, r.text
        for account_id, name, arr, stage, owner, days in ACCOUNTS:
            r = http.post(url("lifecycle", "/v1/accounts"), json=account_body(
                account_id, name, arr=arr, stage=stage, owner=owner, renewal_in_days=days))
            assert r.status_code == 201, r.text
        today = dt.date.today()
        for account_id, *_ in ACCOUNTS[:4]:
            r = http.post(url("metrics", "/v1/events"), json=usage_events(account_id, days=45, per_day=4))
            assert r.status_code == 202, r.text
        http.post(url("metrics", "/v1/surveys"), json={"account_id": "northwind", "kind": "nps", "score": 5,
                                                       "respondent": "cfo@northwind.example"})
        http.post(url("lifecycle", "/v1/accounts/northwind/tasks"), json={
            "title": "Prepare the renewal deck", "owner": OWNER,
            "due_date": (today + dt.timedelta(days=3)).isoformat()})
        h = http.post(url("handoff", "/v1/handoffs"), json=handoff_body("acme-robotics", "Acme Robotics"))
        assert h.status_code == 201, h.text
        assert http.post(url("handoff", f"/v1/handoffs/{h.json()['id']}/submit"), json={}).status_code == 200
        poll(lambda: http.get(url("notifier", "/v1/alerts"), params={"status": "firing"}).json()["items"],
             message="the renewal-watch alert fired")
        poll(lambda: http.get(url("metrics", "/v1/accounts/northwind/usage")).json()["items"],
             message="usage rolled up")


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Callable[[Any, str], None]:
    root = tmp_path_factory.mktemp("screenshots")
    extra = os.environ.get("CONSOLE_SCREENSHOT_DIR")

    def take(page: Any, name: str) -> None:
        page.screenshot(path=str(root / f"{name}.png"), full_page=True)
        if extra:
            Path(extra).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(extra) / f"console-{name}.png"), full_page=False)
        assert (root / f"{name}.png").stat().st_size > 10_000

    return take


def test_the_console_in_a_real_browser(chromium, stack, shots) -> None:
    from playwright.sync_api import expect, sync_playwright

    suite, console = stack
    base = console.url
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=LAUNCH_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1360, "height": 900}, locale="en-US")
            page = context.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

            # Sign in: the portfolio lists the seeded accounts, largest ARR first (no risk model yet).
            page.goto(base + "/")
            expect(page).to_have_url(base + "/signin")
            page.fill("input[name=token]", OWNER_TOKEN)
            page.click("button[type=submit]")
            expect(page.locator("h1")).to_contain_text("Portfolio")
            names = page.locator("table.portfolio tbody tr td:first-child a").all_inner_texts()
            assert names[:len(ACCOUNTS)] == [a[1] for a in ACCOUNTS]
            assert OWNER_TOKEN not in page.url and OWNER_TOKEN not in page.content()
            cookie = next(c for c in context.cookies() if c["name"] == "ps_console")
            assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and OWNER_TOKEN not in cookie["value"]
            assert page.evaluate("document.cookie") == ""  # HttpOnly: scripts cannot read the session
            shots(page, "portfolio")

            # Account 360: health components, charts, the ledger, tasks, timeline.
            page.click("table.portfolio >> text=Northwind Traders")
            expect(page.locator("h1")).to_contain_text("Northwind Traders")
            expect(page.locator("table.health-components")).to_contain_text("usage")
            charts = page.locator("svg.chart[role=img]")
            assert charts.count() >= 4
            assert page.locator("svg.chart-bars rect").count() >= 30
            expect(page.locator("section[aria-labelledby=tasks-h]")).to_contain_text(
                "Prepare the renewal deck")
            page.click("section[aria-labelledby=usage-h] .tabs >> text=90 days")
            expect(page).to_have_url(base + "/accounts/northwind?days=90")
            assert "90 days from" in (page.locator("svg.chart-bars desc").first.text_content() or "")
            shots(page, "account")

            # Alerts: acknowledge one.
            page.click("nav >> text=Alerts")
            row = page.locator("table.alerts tbody tr", has_text="renewal-watch").first
            expect(row).to_contain_text("northwind")
            row.locator("button", has_text="Acknowledge").click()
            expect(page.locator(".flash.ok")).to_contain_text("Alert acknowledged")
            page.click(".tabs >> text=Acknowledged")
            expect(page.locator("table.alerts")).to_contain_text(OWNER)
            shots(page, "alerts")

            # Handoff queue: read the document, accept.
            page.click("nav >> text=Handoffs")
            page.click("text=Acme Robotics")
            expect(page.frame_locator("iframe").locator("body")).to_contain_text("Acme Robotics")
            page.click("button:has-text('Accept')")
            expect(page.locator(".flash.ok")).to_contain_text("Handoff accepted")
            expect(page.locator("h1 .status")).to_contain_text("Accepted")
            poll(lambda: httpx.get(suite.url("lifecycle") + "/v1/accounts/acme-robotics",
                                   headers={"Authorization": f"Bearer {OWNER_TOKEN}"}).status_code == 200,
                 message="lifecycle onboarded the accepted handoff")

            # Japanese by the switch.
            page.goto(base + "/")
            page.click("text=日本語")
            expect(page.locator("h1")).to_contain_text("ポートフォリオ")
            expect(page.locator("html")).to_have_attribute("lang", "ja")
            shots(page, "portfolio-ja")
            page.click("text=English")

            # A service down: the page still renders and names it.
            suite.services["metrics"].stop()
            page.goto(base + "/accounts/northwind")
            expect(page.locator(".banner.down")).to_contain_text("metrics")
            expect(page.locator("h1")).to_contain_text("Northwind Traders")
            expect(page.locator("section[aria-labelledby=ledger-h]")).to_be_visible()
            shots(page, "metrics-down")
            assert not [e for e in errors if "Content Security Policy" in e], errors
        finally:
            browser.close()
