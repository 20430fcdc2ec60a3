"""The portfolio's rows: accounts joined with churn risk, filtered, sorted and paged (pure functions)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

SORTS: tuple[str, ...] = ("arr_at_risk", "arr", "renewal", "health", "risk", "name")
STAGES: tuple[str, ...] = ("onboarding", "adoption", "expansion", "renewal", "churned")
HEALTH_BANDS: tuple[str, ...] = ("green", "yellow", "red")
RISK_BANDS: tuple[str, ...] = ("high", "medium", "low")


def _dec(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


@dataclass
class Row:
    id: str
    name: str
    stage: str
    owner: str | None
    segment: str | None
    arr: Decimal | None
    currency: str | None
    renewal_date: str | None
    days_to_renewal: int | None
    health_score: float | None
    health_band: str | None
    risk_probability: float | None
    risk_band: str | None

    @property
    def arr_at_risk(self) -> Decimal | None:
        if self.arr is None or self.risk_probability is None:
            return None
        return self.arr * Decimal(str(round(self.risk_probability, 4)))


def risk_index(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """account id -> {probability, band} from the items of ``GET /v1/risk``."""
    return {str(i["account_id"]): i for i in items if isinstance(i, dict) and "account_id" in i}


def build_rows(accounts: list[dict[str, Any]], risks: dict[str, dict[str, Any]], today: dt.date) -> list[Row]:
    rows = []
    for a in accounts:
        health = a.get("health") or {}
        # Lifecycle's account carries its risk once the metrics service publishes it; else the risk list.
        risk = a.get("risk") or risks.get(a["id"]) or {}
        renewal = a.get("renewal_date")
        days = None
        if renewal:
            try:
                days = (dt.date.fromisoformat(str(renewal)[:10]) - today).days
            except ValueError:
                days = None
        prob = risk.get("probability")
        rows.append(Row(
            id=a["id"], name=a.get("name") or a["id"], stage=a.get("stage") or "", owner=a.get("owner"),
            segment=a.get("segment"), arr=_dec(a.get("arr")), currency=a.get("currency"), renewal_date=renewal,
            days_to_renewal=days, health_score=health.get("score"), health_band=health.get("band"),
            risk_probability=float(prob) if prob is not None else None, risk_band=risk.get("band")))
    return rows


def filter_rows(rows: list[Row], *, q: str = "", risk: str = "") -> list[Row]:
    """The filters the lifecycle API does not apply itself: text search and the risk band."""
    needle = q.strip().lower()
    out = rows
    if needle:
        out = [r for r in out if needle in r.name.lower() or needle in r.id.lower()]
    if risk:
        out = [r for r in out if r.risk_band == risk]
    return out


_ZERO = Decimal(0)


def sort_rows(rows: list[Row], sort: str = "arr_at_risk", descending: bool = True) -> list[Row]:
    """Default: ARR at risk, then ARR, largest first. Unknown values sort last either way."""
    def key(r: Row) -> tuple[Any, ...]:
        arr = r.arr if r.arr is not None else _ZERO
        if sort == "arr":
            return (r.arr is not None, arr)
        if sort == "renewal":
            # Sooner renewals first when descending by urgency.
            return (r.days_to_renewal is not None, -(r.days_to_renewal or 0))
        if sort == "health":
            return (r.health_score is not None, -(r.health_score or 0.0))
        if sort == "risk":
            return (r.risk_probability is not None, r.risk_probability or 0.0, arr)
        if sort == "name":
            return (True, tuple(-ord(c) for c in r.name.lower()))
        at_risk = r.arr_at_risk
        return (at_risk is not None, at_risk if at_risk is not None else _ZERO, arr)
    ordered = sorted(rows, key=key, reverse=True)
    if not descending:
        known = [r for r in ordered if key(r)[0]]
        unknown = [r for r in ordered if not key(r)[0]]
        ordered = list(reversed(known)) + unknown
    return ordered


@dataclass
class Summary:
    """The book at a glance (over the filtered rows): ARR and ARR at risk per currency, bands, renewals."""

    accounts: int
    arr: dict[str, Decimal]
    arr_at_risk: dict[str, Decimal]
    red_health: int
    high_risk: int
    renewing_90d: int


def summarize(rows: list[Row]) -> Summary:
    arr: dict[str, Decimal] = {}
    at_risk: dict[str, Decimal] = {}
    for r in rows:
        cur = r.currency or ""
        if r.arr is not None:
            arr[cur] = arr.get(cur, _ZERO) + r.arr
        if r.arr_at_risk is not None:
            at_risk[cur] = at_risk.get(cur, _ZERO) + r.arr_at_risk
    return Summary(accounts=len(rows), arr=arr, arr_at_risk=at_risk,
                   red_health=sum(1 for r in rows if r.health_band == "red"),
                   high_risk=sum(1 for r in rows if r.risk_band == "high"),
                   renewing_90d=sum(1 for r in rows if r.days_to_renewal is not None and 0 <= r.days_to_renewal <= 90))


def paginate(rows: list[Row], page: int, size: int) -> tuple[list[Row], int, int]:
    """The rows of ``page`` (1-based, clamped), that page and the number of pages."""
    pages = max(1, -(-len(rows) // size))
    page = min(max(page, 1), pages)
    return rows[(page - 1) * size: page * size], page, pages
