"""Settings of the lifecycle service (env vars; `LIFECYCLE_<NAME>` overrides `<NAME>`)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import NoDecode

from shared.settings import Duration, IntList, ServiceSettings


class MilestoneTemplate(BaseModel):
    """One standard onboarding milestone: a task due ``offset_days`` after the contract start."""

    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$", examples=["kickoff"])
    title: str = Field(min_length=1, max_length=200, examples=["Kickoff call"])
    offset_days: int = Field(ge=0, le=3650, examples=[7])


DEFAULT_MILESTONES = [
    MilestoneTemplate(key="kickoff", title="Kickoff", offset_days=7),
    MilestoneTemplate(key="initial_setup", title="Initial setup", offset_days=21),
    MilestoneTemplate(key="data_migration", title="Data migration", offset_days=45),
    MilestoneTemplate(key="training", title="Training", offset_days=60),
    MilestoneTemplate(key="go_live", title="Go-live", offset_days=90),
]


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "lifecycle"
    default_port: ClassVar[int] = 8002

    onboarding_milestones: Annotated[list[MilestoneTemplate], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_MILESTONES),
        description="The onboarding plan's standard milestones (JSON list of {key, title, offset_days}).",
    )
    go_live_milestone: str = Field(default="go_live", description="The milestone whose completion ends onboarding.")
    onboarding_stuck_after_days: int = Field(
        default=14, ge=1, description="A plan task overdue this long (or a missed go-live) makes onboarding stuck."
    )
    renewal_windows: IntList = Field(
        default_factory=lambda: [120, 90, 60, 30],
        description="Days before the renewal date at which `renewal.window_entered` fires (e.g. 120,90,60,30).",
    )
    run_scheduler: bool = Field(default=True, description="Run the renewal-window / overdue-task loop.")
    scheduler_interval: float = Field(default=60.0, gt=0, description="Seconds between scheduler passes.")
    scheduler_batch_size: int = Field(default=500, ge=1, le=10_000)
    max_trigger_age: Duration = Field(
        default=dt.timedelta(days=7), gt=dt.timedelta(0),
        description="Events older than this (by their `time`, e.g. 7d, 36h) start no playbook run: importing "
                    "history creates no work.",
    )
    clock_now: dt.datetime | None = Field(
        default=None, description="Freeze the service's clock at this instant (demos, tests); unset = real time."
    )

    @field_validator("onboarding_milestones", mode="before")
    @classmethod
    def _parse_milestones(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    @field_validator("renewal_windows")
    @classmethod
    def _check_windows(cls, value: list[int]) -> list[int]:
        if any(w <= 0 or w > 3650 for w in value):
            raise ValueError("renewal windows must be between 1 and 3650 days")
        return sorted(set(value), reverse=True)

    @field_validator("clock_now")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value

    @model_validator(mode="after")
    def _check_template(self) -> Settings:
        keys = [m.key for m in self.onboarding_milestones]
        if len(keys) != len(set(keys)):
            raise ValueError("onboarding milestone keys must be unique")
        if self.go_live_milestone not in keys:
            raise ValueError(f"the onboarding template must contain the go-live milestone '{self.go_live_milestone}'")
        return self
