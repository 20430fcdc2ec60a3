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
    health_min_delta: float = Field(
        default=5.0, gt=0, le=100,
        description="health.changed is emitted when the band changes or the score moved by at least this many "
                    "points since the last emitted one: copies downstream are never further off than this.")
    health_min_coverage: float = Field(
        default=0.5, ge=0, le=1,
        description="No band (and no health.changed) while the share of the model's weight with data is below this.")
    max_quantity: float = Field(
        default=1e9, gt=0, le=1e12,
        description="Largest `data.quantity` of a usage event; larger ones are refused (422 / dead-lettered).")
    # METRICS_MAX_FUTURE_SKEW and METRICS_MAX_EVENT_AGE (the event and survey times accepted) are the
    # shared `max_future_skew` and `max_event_age`; the shared settings keep dedup keys (DEDUP_RETENTION)
    # at least `max_event_age` long.
    usage_batch_events: int = Field(
        default=10_000, ge=1, le=100_000,
        description="Usage events the usage consumer applies per transaction (at most; a batch is what arrived).")
    usage_batch_wait_ms: float = Field(
        default=200, ge=0, le=10_000,
        description="Milliseconds the usage consumer waits for a batch to fill up before applying it.")
    usage_plan_worker: bool = Field(
        default=True,
        description="Decode and plan large usage batches in a worker process beside the service's own: the "
                    "consumer's Python work then runs on two cores. Off: everything in the service's process.")
    usage_plan_worker_min_batch: int = Field(
        default=1000, ge=1, le=100_000,
        description="Smallest usage batch (events) sent to the worker process; smaller ones are planned in the "
                    "service, where the round trip would cost more than it saves.")
    risk_band_high: float = Field(default=0.5, gt=0, le=1, description="Churn probability from which the band is high.")
    risk_band_medium: float = Field(default=0.2, gt=0, le=1, description="Churn probability from which it is medium.")
    risk_snapshot_days: int = Field(default=7, ge=1, le=90, description="Days between training snapshots.")
    risk_score_interval: float = Field(default=86400, gt=0, description="Seconds between scorings of every account.")
    risk_retrain_interval: float = Field(
        default=7 * 86400, gt=0, description="Seconds after which the current risk model is retrained (same horizon); "
        "the first model is trained by an admin (POST /v1/risk-model/train).")
    risk_check_interval: float = Field(default=60, gt=0, description="Seconds between checks of the risk schedule.")
