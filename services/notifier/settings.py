"""Settings of the notifier service (env vars; `NOTIFIER_<NAME>` overrides `<NAME>`)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, SecretStr, model_validator

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "notifier"
    default_port: ClassVar[int] = 8004

    lifecycle_public_url: str = Field(
        default="http://127.0.0.1:8002", description="Base URL of the lifecycle API, for links back to accounts.")
    secret_key: SecretStr | None = Field(
        default=None,
        description="Key that encrypts channel secrets at rest. Unset: a key file in POSTSALES_DATA_DIR "
                    "(give every replica the same NOTIFIER_SECRET_KEY in production).")
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
    smtp_host: str = "127.0.0.1"
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
