"""The console's pages. Each reads and writes only through the four public APIs with the person's token."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import urllib.parse
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from services.console import charts
from services.console import portfolio as pf
from services.console.i18n import LANGS
from services.console.session import Session
from services.console.upstream import Answer
from services.console.web import LANG_COOKIE, FormDep, MemberDep, Page, VisitorDep, checked_form, local
from shared.auth import KeyStore

router = APIRouter(include_in_schema=False)
log = logging.getLogger("postsales.console.auth")

AccountId = Annotated[str, Path(min_length=1, max_length=200)]
ItemId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
q = urllib.parse.quote


def _items(a: Answer) -> list[Any]:
    if a.ok and isinstance(a.data, dict):
        items = a.data.get("items")
        return items if isinstance(items, list) else []
    if a.ok and isinstance(a.data, list):
        return a.data
    return []


def _actor(page: Page) -> str | None:
    return page.principal.owner if page.principal else None


# --- sign-in --------------------------------------------------------------------------------------

@router.get("/signin")
async def signin_form(page: VisitorDep, next: Annotated[str, Query(max_length=500)] = "/") -> Response:
    if page.principal is not None:
        return page.redirect(local(next))
    return page.render("signin.html", next=local(next), error=None)


@router.post("/signin")
async def signin(request: Request, page: VisitorDep, form: FormDep) -> Response:
    token = form.get("token", "").strip()
    keystore: KeyStore = request.app.state.keystore
    principal = keystore.authenticate(token) if 0 < len(token) <= 500 else None
    if principal is None:
        log.info("console: sign-in refused (unknown token)")
        return page.render("signin.html", status_code=401, next=local(form.get("next")),
                           error="That token is not known. Check it and try again.")
    log.info("console: signed in key %s (owner %s)", principal.key_id, principal.owner or "-")
    # A fresh session (and CSRF token) on sign-in: nothing from before carries over.
    page.session = Session(token=token, key_id=principal.key_id, owner=principal.owner,
                           expires=time.time() + page.settings.session_ttl_minutes * 60)
    return page.redirect(local(form.get("next")))


@router.post("/signout")
async def signout(request: Request, page: VisitorDep) -> Response:
    if page.principal is not None:  # signing out of a session that already ended needs no token
        await checked_form(request, page)
        page.session = Session(flash=[("info", "Signed out.")])
    return page.redirect("/signin")


@router.get("/lang/{code}")
async def switch_language(page: VisitorDep, code: str, next: Annotated[str, Query(max_length=500)] = "/") -> Response:
    response = page.redirect(local(next))
    if code in LANGS:
        response.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, httponly=True, samesite="lax",
                            secure=page.secure, path="/")
    return response


# --- portfolio ------------------------------------------------------------------------------------

async def portfolio_data(page: Page, *, stage: str, owner: str, segment: str, health: str
                         ) -> tuple[Answer, Answer]:
    cap = page.settings.max_accounts
    accounts, risk = await asyncio.gather(
        page.api.every("lifecycle", "/v1/accounts", cap, stage=stage or None, owner=owner or None,
                       segment=segment or None, health_band=health or None),
        page.api.every("metrics", "/v1/risk", cap),
    )
    return accounts, risk


@router.get("/")
async def portfolio(
    page: MemberDep,
    q_: Annotated[str, Query(alias="q", max_length=200)] = "",
    stage: Annotated[str, Query(max_length=20)] = "",
    owner: Annotated[str, Query(max_length=200)] = "",
    segment: Annotated[str, Query(max_length=100)] = "",
    health: Annotated[str, Query(max_length=10)] = "",
    risk: Annotated[str, Query(max_length=10)] = "",
    sort: Annotated[str, Query(max_length=20)] = "arr_at_risk",
    dir: Annotated[str, Query(max_length=4)] = "desc",
    page_no: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
) -> Response:
    stage = stage if stage in pf.STAGES else ""
    health = health if health in pf.HEALTH_BANDS else ""
    risk = risk if risk in pf.RISK_BANDS else ""
    sort = sort if sort in pf.SORTS else "arr_at_risk"
    accounts, risk_answer = await portfolio_data(page, stage=stage, owner=owner, segment=segment, health=health)
    risk_items = risk_answer.data if risk_answer.ok and isinstance(risk_answer.data, list) else []
    rows = pf.build_rows(accounts.data if accounts.ok else [], pf.risk_index(risk_items), page.today)
    rows = pf.sort_rows(pf.filter_rows(rows, q=q_, risk=risk), sort, descending=dir != "asc")
    shown, current, pages = pf.paginate(rows, page_no, page.settings.page_size)
    summary = pf.summarize(rows)
    params = {"q": q_, "stage": stage, "owner": owner, "segment": segment, "health": health, "risk": risk,
              "sort": sort, "dir": dir}

    def link(**changes: Any) -> str:
        merged = {k: v for k, v in (params | changes).items() if v not in ("", None)}
        return "/?" + urllib.parse.urlencode(merged)

    return page.render("portfolio.html", summary=summary, rows=shown, total=len(rows), current=current, pages=pages,
                       params=params, link=link, accounts=accounts, risk_answer=risk_answer, stages=pf.STAGES,
                       health_bands=pf.HEALTH_BANDS, risk_bands=pf.RISK_BANDS, sorts=pf.SORTS)


# --- account 360 ----------------------------------------------------------------------------------

def health_trend(timeline: Answer, health: Answer) -> list[tuple[dt.datetime, float]]:
    points: list[tuple[dt.datetime, float]] = []
    for e in _items(timeline):
        data = e.get("data") or {}
        score = data.get("new_score")
        if score is not None:
            points.append((dt.datetime.fromisoformat(str(e["occurred_at"]).replace("Z", "+00:00")), float(score)))
    if health.ok and isinstance(health.data, dict) and health.data.get("score") is not None:
        at = health.data.get("computed_at")
        if at:
            points.append((dt.datetime.fromisoformat(str(at).replace("Z", "+00:00")), float(health.data["score"])))
    return points


@router.get("/accounts/{account_id}")
async def account(page: MemberDep, account_id: AccountId,
                  days: Annotated[int, Query()] = 30) -> Response:
    days = 90 if days == 90 else 30
    end = page.today
    start = end - dt.timedelta(days=days - 1)
    aid = q(account_id, safe="")
    api = page.api
    (acct, tasks, timeline, trend, runs, health, usage, risk, ledger, alerts) = await asyncio.gather(
        api.get("lifecycle", f"/v1/accounts/{aid}"),
        api.get("lifecycle", f"/v1/accounts/{aid}/tasks", limit=200),
        api.get("lifecycle", f"/v1/accounts/{aid}/timeline", limit=50),
        api.get("lifecycle", f"/v1/accounts/{aid}/timeline", type="postsales.health.changed", limit=200),
        api.get("lifecycle", f"/v1/accounts/{aid}/playbook-runs", limit=50),
        api.get("metrics", f"/v1/accounts/{aid}/health"),
        api.get("metrics", f"/v1/accounts/{aid}/usage", **{"from": start.isoformat(), "to": end.isoformat()}),
        api.get("metrics", f"/v1/accounts/{aid}/risk"),
        api.get("handoff", "/v1/commitments", account_id=account_id, limit=200),
        api.get("notifier", "/v1/alerts", subject=account_id, limit=100),
    )
    if acct.missing:
        return page.render("not_found.html", status_code=404, what=account_id)
    t = page.t
    components = health.data.get("components", []) if health.ok and isinstance(health.data, dict) else []
    health_chart = charts.hbar_chart(
        [(t(c["name"]), float(c.get("contribution") or 0.0),
          f"{charts._num(c['value'])} x {float(c.get('weight') or 0):.2f}" if c.get("value") is not None
          else t("no data yet")) for c in components],
        title=t("Components"), empty=t("no data yet"), positive_label=t("raises score"),
        negative_label=t("lowers score"))
    trend_chart = charts.line_chart(
        health_trend(trend, health), title=t("Health trend"), empty=t("no data yet"),
        thresholds=[(70, f"{t('green')} ≥ 70"), (40, f"{t('yellow')} ≥ 40")])
    usage_rows = _items(usage)
    usage_chart = charts.bar_chart(
        [(dt.date.fromisoformat(r["date"]), float(r.get("events") or 0)) for r in usage_rows],
        title=f"{t('Usage, events per day')} ({days} {t('days')})", start=start, end=end, empty=t("no data yet"))
    users_chart = charts.bar_chart(
        [(dt.date.fromisoformat(r["date"]), float(r.get("active_users") or 0)) for r in usage_rows],
        title=f"{t('active users')} ({days} {t('days')})", start=start, end=end, empty=t("no data yet"))
    drivers = (risk.data.get("drivers") or []) if risk.ok and isinstance(risk.data, dict) else []
    risk_chart = charts.hbar_chart(
        [(str(d.get("name")), float(d.get("contribution") or 0.0),
          f"{d.get('value')!s} ({float(d.get('contribution') or 0):+.2f})") for d in drivers],
        title=t("Risk drivers"), empty=t("No churn-risk model is trained yet."),
        positive_label=t("raises risk"), negative_label=t("lowers risk"))
    open_alerts = [a for a in _items(alerts) if a.get("status") != "resolved"]
    return page.render(
        "account.html", account_id=account_id, acct=acct, a=acct.data if acct.ok else {}, tasks=tasks,
        timeline=timeline, runs=runs, health=health, usage=usage, risk=risk, ledger=ledger, alerts=alerts,
        open_alerts=open_alerts, days=days, items=_items, health_chart=health_chart, trend_chart=trend_chart,
        usage_chart=usage_chart, users_chart=users_chart, risk_chart=risk_chart)


@router.post("/accounts/{account_id}/tasks/{task_id}/done")
async def complete_task(page: MemberDep, form: FormDep, account_id: AccountId, task_id: ItemId) -> Response:
    a = await page.api.patch("lifecycle", f"/v1/accounts/{q(account_id, safe='')}/tasks/{task_id}",
                             {"status": "done"})
    _outcome(page, a, "Task done.")
    return page.redirect(local(form.get("next"), f"/accounts/{q(account_id, safe='')}"))


def _outcome(page: Page, a: Answer, success: str) -> None:
    if a.ok:
        page.session.say("ok", success)
    elif a.forbidden:
        page.session.say("error", f"{page.t('Your token lacks a scope for this')}: {a.detail}")
    elif a.down:
        page.session.say("error", f"{a.service} {page.t('is not reachable')}")
    else:
        page.session.say("error", f"{a.service}: {a.detail or a.status}")


# --- renewals -------------------------------------------------------------------------------------

WINDOWS = (30, 60, 90, 120)


@router.get("/renewals")
async def renewals(page: MemberDep, within: Annotated[int, Query(ge=0, le=3650)] = 90) -> Response:
    within = within if within in WINDOWS else 90
    upcoming, risk = await asyncio.gather(
        page.api.every("lifecycle", "/v1/renewals/upcoming", 5000, within_days=within),
        page.api.every("metrics", "/v1/risk", page.settings.max_accounts),
    )
    risks = pf.risk_index(risk.data if risk.ok and isinstance(risk.data, list) else [])
    items = sorted(upcoming.data if upcoming.ok else [], key=lambda r: (r.get("days_until", 0), r.get("name", "")))
    buckets: list[tuple[int, list[dict[str, Any]]]] = []
    lower = -1
    for w in WINDOWS:
        if w > within:
            break
        buckets.append((w, [r for r in items if lower < int(r.get("days_until", 0)) <= w]))
        lower = w
    return page.render("renewals.html", upcoming=upcoming, buckets=buckets, within=within, windows=WINDOWS,
                       risks=risks)


# --- alerts ---------------------------------------------------------------------------------------

ALERT_STATES = ("firing", "acknowledged", "resolved")


@router.get("/alerts")
async def alerts(page: MemberDep, status: Annotated[str, Query(max_length=20)] = "firing") -> Response:
    status = status if status in ALERT_STATES else "firing"
    answer = await page.api.get("notifier", "/v1/alerts", status=status, limit=200)
    return page.render("alerts.html", answer=answer, items=_items(answer), status=status, states=ALERT_STATES)


@router.post("/alerts/{alert_id}/ack")
async def ack_alert(page: MemberDep, form: FormDep, alert_id: ItemId) -> Response:
    a = await page.api.post("notifier", f"/v1/alerts/{alert_id}/ack",
                            {"by": _actor(page), "comment": form.get("comment") or None})
    _outcome(page, a, "Alert acknowledged.")
    return page.redirect(local(form.get("next"), "/alerts"))


@router.post("/alerts/{alert_id}/resolve")
async def resolve_alert(page: MemberDep, form: FormDep, alert_id: ItemId) -> Response:
    a = await page.api.post("notifier", f"/v1/alerts/{alert_id}/resolve",
                            {"by": _actor(page), "reason": (form.get("reason") or "")[:2000] or None})
    _outcome(page, a, "Alert resolved.")
    return page.redirect(local(form.get("next"), "/alerts"))


@router.post("/alerts/{alert_id}/silence")
async def silence_alert(page: MemberDep, form: FormDep, alert_id: ItemId) -> Response:
    hours = form.get("hours", "4")
    duration = int(hours) if hours.isdigit() and 0 < int(hours) <= 24 * 30 else 4
    alert = await page.api.get("notifier", f"/v1/alerts/{alert_id}")
    if not alert.ok:
        _outcome(page, alert, "")
        return page.redirect(local(form.get("next"), "/alerts"))
    ends = dt.datetime.now(dt.UTC) + dt.timedelta(hours=duration)
    body = {"matchers": [{"name": "alertname", "value": alert.data["rule_name"]},
                         {"name": "subject", "value": alert.data["subject"]}],
            "created_by": _actor(page) or f"key:{page.principal.key_id if page.principal else '?'}",
            "comment": (form.get("comment") or "").strip()[:2000] or "silenced from the console",
            "ends_at": ends.isoformat()}
    a = await page.api.post("notifier", "/v1/silences", body)
    _outcome(page, a, "Alert silenced.")
    return page.redirect(local(form.get("next"), "/alerts"))


# --- handoffs -------------------------------------------------------------------------------------

HANDOFF_STATES = ("submitted", "returned", "accepted", "draft")


@router.get("/handoffs")
async def handoffs(page: MemberDep, status: Annotated[str, Query(max_length=20)] = "submitted") -> Response:
    status = status if status in HANDOFF_STATES else "submitted"
    answer = await page.api.get("handoff", "/v1/handoffs", status=status, limit=200)
    return page.render("handoffs.html", answer=answer, items=_items(answer), status=status, states=HANDOFF_STATES)


@router.get("/handoffs/{handoff_id}")
async def handoff(page: MemberDep, handoff_id: ItemId) -> Response:
    answer = await page.api.get("handoff", f"/v1/handoffs/{handoff_id}")
    if answer.missing:
        return page.render("not_found.html", status_code=404, what=handoff_id)
    return page.render("handoff.html", answer=answer, h=answer.data if answer.ok else {}, handoff_id=handoff_id)


# The handoff service renders its document with every value escaped; the console serves it sandboxed anyway
# (no script, no network, no forms), inside a frame of its own page.
DOC_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox; frame-ancestors 'self'"


@router.get("/handoffs/{handoff_id}/document")
async def handoff_document(page: MemberDep, handoff_id: ItemId) -> Response:
    a = await page.api.text("handoff", f"/v1/handoffs/{handoff_id}/document", "text/html", format="html",
                            lang=page.lang)
    if not a.ok or not isinstance(a.data, str):
        return page.render("not_found.html", status_code=404 if a.missing else 502, what=handoff_id)
    return Response(a.data, media_type="text/html; charset=utf-8",
                    headers={"Content-Security-Policy": DOC_CSP, "X-Frame-Options": "SAMEORIGIN",
                             "Cache-Control": "no-store"})


@router.post("/handoffs/{handoff_id}/accept")
async def accept_handoff(page: MemberDep, form: FormDep, handoff_id: ItemId) -> Response:
    a = await page.api.post("handoff", f"/v1/handoffs/{handoff_id}/accept", {"by": _actor(page)})
    _outcome(page, a, "Handoff accepted.")
    return page.redirect(f"/handoffs/{handoff_id}")


@router.post("/handoffs/{handoff_id}/return")
async def return_handoff(page: MemberDep, form: FormDep, handoff_id: ItemId) -> Response:
    reason = (form.get("reason") or "").strip()[:2000]
    if not reason:
        page.session.say("error", page.t("Reason") + ": required")
        return page.redirect(f"/handoffs/{handoff_id}")
    a = await page.api.post("handoff", f"/v1/handoffs/{handoff_id}/return", {"reason": reason, "by": _actor(page)})
    _outcome(page, a, "Handoff returned.")
    return page.redirect(f"/handoffs/{handoff_id}")


# --- my worklist ----------------------------------------------------------------------------------

@router.get("/worklist")
async def worklist(page: MemberDep, owner: Annotated[str, Query(max_length=200)] = "") -> Response:
    mine = page.principal.owner if page.principal else None
    who = owner or mine or ""
    open_, doing = await asyncio.gather(
        page.api.every("lifecycle", "/v1/tasks", 2000, owner=who or None, status="open"),
        page.api.every("lifecycle", "/v1/tasks", 2000, owner=who or None, status="in_progress"),
    )
    tasks = (open_.data if open_.ok else []) + (doing.data if doing.ok else [])
    week = (page.today + dt.timedelta(days=7)).isoformat()
    today = page.today.isoformat()
    groups = [
        ("Overdue", [x for x in tasks if x.get("due_date") and x["due_date"] < today]),
        ("Due this week", [x for x in tasks if x.get("due_date") and today <= x["due_date"] <= week]),
        ("Later", [x for x in tasks if x.get("due_date") and x["due_date"] > week]),
        ("No due date", [x for x in tasks if not x.get("due_date")]),
    ]
    for _, group in groups:
        group.sort(key=lambda x: (x.get("due_date") or "", x.get("account_id") or ""))
    return page.render("worklist.html", answer=open_ if not open_.ok else doing, groups=groups, who=who, mine=mine,
                       count=len(tasks))

