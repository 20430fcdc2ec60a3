"""The submit checklist: which field paths a handoff must fill before post-sales can take it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from services.handoff.models import Handoff


@dataclass(frozen=True)
class Check:
    satisfied: Callable[[Handoff, int], bool]
    message: str


def _filled(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list):
        return any(_filled(v) for v in value)
    return True


def _attr(name: str, message: str) -> Check:
    return Check(lambda h, _n: _filled(getattr(h, name)), message)


def is_champion(stakeholder: dict[str, Any]) -> bool:
    return bool(stakeholder.get("champion")) or "champion" in str(stakeholder.get("role") or "").lower()


CHECKS: dict[str, Check] = {
    "account.name": _attr("account_name", "the account name is required"),
    "account.segment": _attr("account_segment", "the account segment is required"),
    "account.plan": _attr("account_plan", "the plan sold is required"),
    "account.seats": _attr("account_seats", "the number of licensed seats is required"),
    "account.arr": _attr("account_arr", "the contract ARR is required"),
    "account.currency": _attr("account_currency", "the ARR currency is required"),
    "account.contract_start": _attr("account_contract_start", "the contract start date is required"),
    "account.renewal_date": _attr("account_renewal_date", "the renewal date is required"),
    "challenges": _attr("challenges", "at least one customer challenge is required"),
    "goals": _attr("goals", "at least one customer goal is required"),
    "proposal": _attr("proposal", "the proposal summary is required"),
    "demo_notes": _attr("demo_notes", "demo notes are required"),
    "risks": _attr("risks", "at least one risk is required (state the known risks)"),
    "commitments": Check(
        lambda h, n: n > 0 or h.no_commitments,
        "list at least one commitment, or set no_commitments: true to state that nothing was promised",
    ),
    "stakeholders": _attr("stakeholders", "at least one stakeholder is required"),
    "stakeholders.champion": Check(
        lambda h, _n: any(is_champion(s) for s in h.stakeholders or []),
        "a champion stakeholder is required (a stakeholder with champion: true or a champion role)",
    ),
    "presales_owner": _attr("presales_owner", "the presales owner is required"),
    "postsales_owner": _attr("postsales_owner", "the post-sales owner is required"),
}


@dataclass(frozen=True)
class Completeness:
    ratio: float
    missing: list[str]

    def errors(self) -> list[dict[str, Any]]:
        return [{"loc": ["body", *path.split(".")], "msg": CHECKS[path].message} for path in self.missing]


def evaluate(handoff: Handoff, commitment_count: int, checklist: Sequence[str]) -> Completeness:
    missing = [path for path in checklist if not CHECKS[path].satisfied(handoff, commitment_count)]
    total = len(checklist)
    ratio = 1.0 if total == 0 else round((total - len(missing)) / total, 4)
    return Completeness(ratio=ratio, missing=missing)
