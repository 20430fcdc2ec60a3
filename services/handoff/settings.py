"""Settings of the handoff service (env vars; `HANDOFF_<NAME>` overrides `<NAME>`)."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from pydantic import Field, field_validator

from shared.settings import ServiceSettings

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

    completeness_checklist: list[str] = Field(
        default_factory=lambda: list(DEFAULT_CHECKLIST),
        description=(
            "Field paths a handoff needs before it can be submitted (JSON list). `commitments` is satisfied "
            "by at least one commitment or `no_commitments: true`; `stakeholders.champion` by a stakeholder "
            "flagged `champion` or whose role names a champion."
        ),
    )
    overdue_check_interval: float = Field(default=60.0, gt=0, description="Seconds between overdue scans.")
    overdue_batch_size: int = Field(default=500, ge=1, description="Commitments flagged per scan transaction.")

    @field_validator("completeness_checklist", mode="before")
    @classmethod
    def _parse_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            return json.loads(text) if text.startswith("[") else [p.strip() for p in text.split(",") if p.strip()]
        return value

    @field_validator("completeness_checklist", mode="after")
    @classmethod
    def _known_items(cls, value: list[str]) -> list[str]:
        from services.handoff.handoffs.completeness import CHECKS

        unknown = [item for item in value if item not in CHECKS]
        if unknown:
            raise ValueError(f"unknown completeness checklist items {unknown}; known: {sorted(CHECKS)}")
        return list(dict.fromkeys(value))
