"""Settings of the console (env vars; `CONSOLE_<NAME>` overrides `<NAME>`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator

from shared.settings import ServiceSettings

UPSTREAMS: tuple[str, ...] = ("handoff", "lifecycle", "metrics", "notifier")
_PLACEHOLDER_KEYS = ("changeme", "change-me", "replace", "secret", "password", "placeholder", "example", "dev-key")


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "console"
    default_port: ClassVar[int] = 8005

    handoff_url: str = Field(default="http://127.0.0.1:8001", description="Base URL of the handoff service.")
    lifecycle_url: str = Field(default="http://127.0.0.1:8002", description="Base URL of the lifecycle service.")
    metrics_url: str = Field(default="http://127.0.0.1:8003", description="Base URL of the metrics service.")
    notifier_url: str = Field(default="http://127.0.0.1:8004", description="Base URL of the notifier service.")
    session_key: str = Field(default="", repr=False, description=(
        "Secret (>= 32 characters) the session cookie is encrypted with (AES-256-GCM, key derived by HKDF). "
        "`make run` generates one; placeholders are refused at start."))
    session_ttl_minutes: int = Field(default=480, ge=1, le=10_080,
                                     description="A session ends this long after sign-in.")
    cookie_secure: bool | None = Field(default=None, description=(
        "Mark cookies Secure; unset: Secure when the request came over https (directly or X-Forwarded-Proto)."))
    upstream_timeout: float = Field(default=5.0, gt=0, description="Seconds to wait for a service's answer.")
    page_size: int = Field(default=50, ge=50, le=500, description="Rows per page of the portfolio.")
    max_accounts: int = Field(default=20_000, ge=1, description="Accounts the portfolio reads at most.")

    @field_validator("session_key")
    @classmethod
    def _real_key(cls, value: str) -> str:
        lowered = value.strip().lower()
        if not lowered:
            raise ValueError("CONSOLE_SESSION_KEY is not set: give it a random secret of at least 32 characters "
                             "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)")
        if len(value) < 32 or any(p in lowered for p in _PLACEHOLDER_KEYS) or len(set(value)) < 8:
            raise ValueError("CONSOLE_SESSION_KEY is a placeholder or too weak: use a random secret of at least "
                             "32 characters")
        return value

    def upstream_url(self, name: str) -> str:
        url: str = getattr(self, f"{name}_url")
        return url.rstrip("/")
