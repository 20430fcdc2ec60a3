"""Settings of the notifier service (env vars; `NOTIFIER_<NAME>` overrides `<NAME>`)."""

from __future__ import annotations

import os
import re
from typing import ClassVar, Literal

from pydantic import Field, SecretStr, model_validator

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "notifier"
    default_port: ClassVar[int] = 8004

    # Public base URLs of the suite's services, read from the shared environment (LIFECYCLE_PUBLIC_URL ...):
    # every link the notifier sends is built from them. Unset: http://127.0.0.1:<that service's port>.
    lifecycle_public_url: str | None = Field(
        default=None, description="Base URL of the lifecycle API (links to accounts when no console URL is set).")
    handoff_public_url: str | None = Field(default=None, description="Base URL of the handoff API.")
    metrics_public_url: str | None = Field(default=None, description="Base URL of the metrics API.")
    notifier_public_url: str | None = Field(default=None, description="Base URL of this notifier's API.")
    console_public_url: str | None = Field(
        default=None, description="Base URL of the web console; when set, alert links open the console's account page.")
    secret_key: SecretStr | None = Field(
        default=None,
        description="Master key(s) for channel secrets at rest, comma-separated: the first encrypts, all decrypt "
                    "(key rotation). Unset: a key file in POSTSALES_DATA_DIR (give every replica the same "
                    "NOTIFIER_SECRET_KEY in production).")
    max_trigger_age: str = Field(
        default="7d", description="Events older than this (by their `time`) fire and resolve no alert: importing "
                                  "history pages no one.")
    allow_link_local_targets: bool = Field(
        default=False, description="Allow webhook/Slack targets on link-local or cloud-metadata addresses "
                                   "(169.254/16, fe80::/10, 169.254.169.254, fd00:ec2::254 ...).")
    delivery_retention: str = Field(
        default="30d", description="Delivered and dead deliveries, with their attempts, are kept this long.")
    resolved_alert_retention: str = Field(
        default="90d", description="Resolved alerts are kept this long after resolution; active ones always.")
    maintenance_interval: float = Field(
        default=3600.0, gt=0, description="Seconds between retention purges (and secret re-encryption passes).")
    purge_batch_size: int = Field(default=1000, ge=1, le=100_000, description="Rows deleted per statement.")
    default_lang: Literal["en", "ja"] = "en"
    consume_usage: bool = Field(
        default=False,
        description="Consume the high-volume usage topic; rules on usage.* are refused unless this is set.")
    evaluation_interval: float = Field(default=1.0, gt=0, description="Seconds between notification passes.")
    suppressed_recheck: float = Field(
        default=30.0, gt=0, description="Seconds before a silenced/inhibited alert is looked at again.")
    delivery_poll_interval: float = Field(default=1.0, gt=0)
    delivery_timeout: float = Field(default=10.0, gt=0, description="Seconds one send may take.")
    delivery_lease: float = Field(
        default=60.0, gt=0, description="Seconds a claimed delivery is reserved; a crash mid-send retries after it.")
    delivery_max_attempts: int = Field(default=10, ge=1)
    delivery_base_delay: float = Field(default=2.0, gt=0, description="Backoff before the 2nd attempt (seconds).")
    delivery_max_delay: float = Field(default=600.0, gt=0, description="Upper bound of one backoff (seconds).")
    delivery_concurrency_per_channel: int = Field(default=4, ge=1)
    delivery_batch_size: int = Field(default=50, ge=1)
    smtp_host: str | None = Field(
        default=None, description="SMTP relay for email channels; unset: each email channel must name its `smtp.host`.")
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_tls: Literal["starttls", "tls", "none"] = "starttls"
    smtp_from: str = "alerts@postsales.invalid"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None

    @model_validator(mode="after")
    def _lease_covers_timeout(self) -> Settings:
        if self.delivery_lease <= self.delivery_timeout:
            raise ValueError("delivery_lease must be longer than delivery_timeout")
        for name in ("max_trigger_age", "delivery_retention", "resolved_alert_retention"):
            duration_seconds(getattr(self, name))  # raises ValueError naming the bad value
        return self

    def public_url(self, service: str) -> str:
        """The public base URL of ``service`` (no trailing slash)."""
        configured: str | None = getattr(self, f"{service}_public_url")
        if configured:
            return configured.rstrip("/")
        port = os.environ.get(f"{service.upper()}_PORT") or str(DEFAULT_PORTS[service])
        return f"http://127.0.0.1:{port}"

    @property
    def max_trigger_age_seconds(self) -> float:
        return duration_seconds(self.max_trigger_age)


DEFAULT_PORTS = {"handoff": 8001, "lifecycle": 8002, "metrics": 8003, "notifier": 8004, "console": 8005}
_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_seconds(text: str) -> float:
    """Seconds in a setting like ``"7d"``, ``"12h"``, ``"30m"``, ``"90s"`` (no upper bound, unlike rule durations)."""
    m = _DURATION.match(text)
    if not m or int(m.group(1)) <= 0:
        raise ValueError(f"'{text}' is not a positive duration like 90s, 30m, 12h or 7d")
    return float(int(m.group(1)) * _UNIT[m.group(2)])
