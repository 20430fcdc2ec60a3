"""Types shared by the lifecycle schemas: stages and short texts (money and currency: ``shared.types``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field

from shared.errors import Unprocessable
from shared.settings import TimeBounds

STAGES = ("onboarding", "adoption", "expansion", "renewal", "churned")
Stage = Literal["onboarding", "adoption", "expansion", "renewal", "churned"]

# The stage machine of DESIGN.md; any stage but churned may also go to churned.
TRANSITIONS: dict[str, frozenset[str]] = {
    "onboarding": frozenset({"adoption"}),
    "adoption": frozenset({"expansion", "renewal"}),
    "expansion": frozenset({"adoption", "renewal"}),
    "renewal": frozenset({"adoption"}),
    "churned": frozenset(),
}


def allowed_targets(stage: str) -> frozenset[str]:
    return TRANSITIONS.get(stage, frozenset()) | (frozenset({"churned"}) if stage != "churned" else frozenset())


Text200 = Annotated[str, Field(min_length=1, max_length=200)]


def happened_at(at: dt.datetime | None, now: dt.datetime, bounds: TimeBounds, field: str = "at") -> dt.datetime:
    """When a recorded fact happened: ``at`` (history may be imported) or now; 422 when ``at`` is out of
    ``bounds`` (``MAX_FUTURE_SKEW``, ``MAX_EVENT_AGE``)."""
    if at is None:
        return now
    at = at.astimezone(dt.UTC)
    if problem := bounds.problem(at, now):
        raise Unprocessable(f"{field}: {problem}", errors=[{"loc": ["body", field], "msg": problem}])
    return at
