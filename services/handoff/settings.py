"""Settings of the handoff service (env vars; `HANDOFF_<NAME>` overrides `<NAME>`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator

from shared.settings import ServiceSettings, StrList

DEFAULT_CHECKLIST = [
    "account.name",
    "account.renewal_date",
    "account.arr",
    "goals",
    "commitments",
    "stakeholders.champion",
    "postsales_owner",
]


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "handoff"
    default_port: ClassVar[int] = 8001

    completeness_checklist: StrList = Field(
        default_factory=lambda: list(DEFAULT_CHECKLIST),
        description=(
            "Field paths a handoff needs before it can be submitted (comma-separated or a JSON list). "
            "`commitments` is satisfied by at least one commitment or `no_commitments: true`; "
            "`stakeholders.champion` by a stakeholder flagged `champion` or whose role names a champion."
        ),
    )
    overdue_check_interval: float = Field(default=60.0, gt=0, description="Seconds between overdue scans.")
    overdue_batch_size: int = Field(default=500, ge=1, description="Commitments flagged per scan transaction.")

    @field_validator("completeness_checklist", mode="after")
    @classmethod
    def _known_items(cls, value: list[str]) -> list[str]:
        from services.handoff.handoffs.completeness import CHECKS

        unknown = [item for item in value if item not in CHECKS]
        if unknown:
            raise ValueError(f"unknown completeness checklist items {unknown}; known: {sorted(CHECKS)}")
        return list(dict.fromkeys(value))
