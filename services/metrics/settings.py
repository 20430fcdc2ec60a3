"""Settings of the metrics service (env vars; `METRICS_<NAME>` overrides `<NAME>`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "metrics"
    default_port: ClassVar[int] = 8003

    health_interval: float = Field(default=1.0, gt=0, description="Seconds between passes of the health scorer.")
    health_refresh_seconds: float = Field(
        default=3600, gt=0, description="Re-score accounts this old even without new inputs (recency decays).")
    ingest_publish_timeout: float = Field(
        default=5.0, gt=0, description="Seconds POST /v1/events waits for the broker's acknowledgement; then 503.")
    health_batch: int = Field(default=200, ge=1, description="Accounts scored per scorer transaction.")
