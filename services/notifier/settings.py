"""Settings of the notifier service (env vars; `NOTIFIER_<NAME>` overrides `<NAME>`)."""

from __future__ import annotations

import datetime as dt
import os
from typing import ClassVar, Literal

from pydantic import Field, SecretStr, model_validator

from shared.settings import Duration, ServiceSettings


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
    max_trigger_age: Duration = Field(
        default=dt.timedelta(days=7), gt=dt.timedelta(0),
        description="Events older than this (by their `time`) fire and resolve no alert: importing history pages "
                    "no one.")
    allow_link_local_targets: bool = Field(
        default=False, description="Allow webhook/Slack targets on link-local or cloud-metadata addresses "
                                   "(169.254/16, fe80::/10, 169.254.169.254, fd00:ec2::254 ...).")
    delivery_retention: Duration = Field(
        default=dt.timedelta(days=30), gt=dt.timedelta(0),
        description="Delivered and dead deliveries, with their attempts, are kept this long.")
    resolved_alert_retention: Duration = Field(
        default=dt.timedelta(days=90), gt=dt.timedelta(0),
        description="Resolved alerts are kept this long after resolution; active ones always.")
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
        return self

    def public_url(self, service: str) -> str:
        """The public base URL of ``service`` (no trailing slash)."""
        configured: str | None = getattr(self, f"{service}_public_url")
        if configured:
            return configured.rstrip("/")
        port = os.environ.get(f"{service.upper()}_PORT") or str(DEFAULT_PORTS[service])
        return f"http://127.0.0.1:{port}"


DEFAULT_PORTS = {"handoff": 8001, "lifecycle": 8002, "metrics": 8003, "notifier": 8004, "console": 8005}
