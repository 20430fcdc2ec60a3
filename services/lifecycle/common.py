"""Types shared by the lifecycle schemas: stages and short texts (money and currency: ``shared.types``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

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
