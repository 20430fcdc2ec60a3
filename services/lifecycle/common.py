"""Types shared by the lifecycle schemas: stages, money, currency."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, PlainSerializer

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


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


# Documented as accepted (any case), stored upper-case: the schema must not promise more than the API checks.
Currency = Annotated[str, BeforeValidator(_upper), Field(pattern=r"^[A-Za-z]{3}$", examples=["EUR"],
                                                         description="ISO 4217 code (any case; stored upper-case).")]
MoneyIn = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=2, examples=["120000.00"],
                                   description="A decimal string, at most 2 decimals."),
                    AfterValidator(lambda v: v.quantize(Decimal("0.01")))]
MoneyOut = Annotated[Decimal, PlainSerializer(lambda v: f"{v:.2f}", return_type=str, when_used="json"),
                     Field(examples=["120000.00"])]
Text200 = Annotated[str, Field(min_length=1, max_length=200)]
