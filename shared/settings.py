"""Settings shared by every service, read from the environment with pydantic-settings.

Every variable can be overridden per service by prefixing it with the service name, e.g.
``HANDOFF_DATABASE_URL`` wins over ``DATABASE_URL`` for the handoff service. The prefixed names are
a pydantic-settings source of their own, ahead of the plain one, so a value parses the same under
either name (lists as JSON or comma-separated: :data:`StrList`, :data:`IntList`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

SCOPES: frozenset[str] = frozenset(
    {
        "handoff:read",
        "handoff:write",
        "lifecycle:read",
        "lifecycle:write",
        "metrics:read",
        "events:write",
        "alerts:read",
        "alerts:write",
        "admin",
    }
)

_PLACEHOLDER_TOKENS = frozenset({"changeme", "change-me", "secret", "token", "password", "test", "dev"})


def hash_token(token: str) -> str:
    """The ``sha256:<hex>`` form of a token, as accepted in ``POSTSALES_API_KEYS``."""
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


class ApiKey(BaseModel):
    """One configured key: its scopes and, optionally, the person it belongs to (whose "my" pages)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scopes: list[str]
    owner: str | None = Field(default=None, min_length=1, max_length=200)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w|y)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


def _duration(value: Any) -> Any:
    if isinstance(value, str) and (m := _DURATION.match(value)):
        return dt.timedelta(seconds=float(m.group(1)) * _UNIT_SECONDS[m.group(2)])
    return value


Duration = Annotated[dt.timedelta, BeforeValidator(_duration)]
"""A length of time: ``36h``, ``7d``, ``3y`` (365-day years), a number of seconds, or ISO 8601 (``P7D``)."""

THREE_YEARS = dt.timedelta(days=3 * 365 + 1)


def human_duration(d: dt.timedelta) -> str:
    """``1 day``, ``1096 days``, ``36 h``, ``90 s``: a duration as messages say it."""
    seconds = d.total_seconds()
    if seconds and seconds % 86400 == 0:
        days = int(seconds // 86400)
        return f"{days} day{'s' if days != 1 else ''}"
    if seconds and seconds % 3600 == 0:
        return f"{int(seconds // 3600)} h"
    return f"{seconds:g} s"


@dataclass(frozen=True, slots=True)
class TimeBounds:
    """When a recorded fact (an event's ``time``, an ``at`` in a request) may say it happened: at most
    ``max_future_skew`` ahead (``MAX_FUTURE_SKEW``) and at most ``max_age`` ago (``MAX_EVENT_AGE``);
    ``prefix`` names a service's own variables in the messages (``METRICS_``)."""

    max_future_skew: dt.timedelta = dt.timedelta(days=1)
    max_age: dt.timedelta = THREE_YEARS
    prefix: str = ""

    def problem(self, at: dt.datetime, now: dt.datetime) -> str | None:
        """Why ``at`` is refused, or None."""
        if at > now + self.max_future_skew:
            return (f"{at.isoformat()} is more than {human_duration(self.max_future_skew)} in the future "
                    f"({self.prefix}MAX_FUTURE_SKEW)")
        if at < now - self.max_age:
            return (f"{at.isoformat()} is older than the maximum event age of {human_duration(self.max_age)} "
                    f"({self.prefix}MAX_EVENT_AGE)")
        return None


def json_or_csv(value: Any) -> Any:
    """A list setting from the environment: a JSON list, or comma-separated items."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


StrList = Annotated[list[str], NoDecode, BeforeValidator(json_or_csv)]
"""A list of strings setting: ``a,b,c`` or ``["a", "b", "c"]``."""

IntList = Annotated[list[int], NoDecode, BeforeValidator(json_or_csv)]
"""A list of integers setting: ``120,90`` or ``[120, 90]``."""


class ServiceSettings(BaseSettings):
    """Configuration common to every service. Subclasses set ``service_name``."""

    service_name: ClassVar[str] = "service"
    default_port: ClassVar[int] = 8000

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    database_url: str | None = Field(default=None, description="SQLAlchemy async URL; SQLite file if unset.")
    kafka_bootstrap_servers: str = Field(default="127.0.0.1:9092")
    kafka_topic_prefix: str = Field(default="", description="Prepended to every topic name (shared clusters).")
    kafka_topic_partitions: int = Field(default=6, ge=1)
    postsales_api_keys: dict[str, ApiKey] = Field(
        default_factory=dict,
        description='JSON: token (or sha256:<hex>) -> [scopes] or {"scopes": [...], "owner": "<person>"}.')
    postsales_data_dir: Path = Field(default=Path("data"))
    host: str = "127.0.0.1"
    port: int = 0
    log_level: str = "INFO"
    max_body_bytes: int = Field(default=2_000_000, description="Larger request bodies get 413.")
    outbox_poll_interval: float = Field(default=0.2, gt=0)
    outbox_retention_hours: float = Field(default=168, gt=0, description="Published outbox rows kept this long.")
    max_event_age: Duration = Field(
        default=THREE_YEARS, gt=dt.timedelta(0), le=dt.timedelta(days=100 * 366),
        description="The oldest event time the suite accepts (e.g. 3y, 400d); dedup keys are kept at least this long.")
    max_future_skew: Duration = Field(
        default=dt.timedelta(days=1), ge=dt.timedelta(0), le=dt.timedelta(days=366),
        description="Event and `at` times further than this in the future are refused (e.g. 1d, 36h).")
    dedup_retention: Duration | None = Field(
        default=None,
        description="How long consumers remember an event id (processed_events) to drop its duplicates; unset = "
                    "MAX_EVENT_AGE, and never less: a replay of the oldest accepted event is still a duplicate.")
    idempotency_retention: Duration = Field(
        default=dt.timedelta(days=7), gt=dt.timedelta(0),
        description="How long an Idempotency-Key's first result is kept: a retry within it gets the same answer.")
    retention_interval: float = Field(default=600, gt=0, description="Seconds between retention purges.")
    retention_batch_size: int = Field(
        default=1000, ge=1, le=100_000, description="Rows deleted per purge transaction (short write locks).")
    consumer_max_retries: int = Field(default=3, ge=0)
    consumer_retry_backoff: float = Field(default=0.2, ge=0)
    consumer_batch_size: int = Field(default=1000, ge=1)
    consumer_stuck_after_seconds: float = Field(
        default=60, gt=0, description="A partition with lag and no progress this long shows in /readyz.")
    run_consumers: bool = Field(default=True, description="Start the service's Kafka consumers.")
    run_relay: bool = Field(default=True, description="Start the outbox relay (publishes to Kafka).")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Arguments first, then SERVICE_X, then X: the same parsing for both names.
        prefixed = EnvSettingsSource(settings_cls, env_prefix=f"{cls.service_name.upper()}_")
        return init_settings, prefixed, env_settings, dotenv_settings, file_secret_settings

    @model_validator(mode="after")
    def _defaults_and_relations(self) -> Self:
        if not self.port:
            self.port = self.default_port
        if self.dedup_retention is None:
            self.dedup_retention = self.max_event_age
        elif self.dedup_retention < self.max_event_age:
            raise ValueError(
                f"DEDUP_RETENTION ({self.dedup_retention}) must be at least MAX_EVENT_AGE ({self.max_event_age}): "
                "a duplicate of the oldest event the service accepts must still be recognised")
        return self

    @property
    def time_bounds(self) -> TimeBounds:
        """The bounds of event and ``at`` times (``MAX_FUTURE_SKEW``, ``MAX_EVENT_AGE``)."""
        return TimeBounds(self.max_future_skew, self.max_event_age)

    @property
    def dedup_window(self) -> dt.timedelta:
        """How far back, by event time, a duplicate must still be recognised (``dedup_retention``, at least
        ``max_event_age``): dedup keys stored by their event's day are kept this long."""
        return self.dedup_retention or self.max_event_age

    @property
    def dedup_keys_kept(self) -> dt.timedelta:
        """How long processed event ids are kept after they were processed: the dedup window plus
        ``max_future_skew``, since an event may be applied that much before its own time."""
        return self.dedup_window + self.max_future_skew

    @classmethod
    def resolve(cls, settings: ServiceSettings | None = None) -> Self:
        """The settings a service's ``create_app(settings=None)`` runs with: the environment when none
        are given; the given ones when they already are this class; else re-validated as this class
        (the shared fields as given, the service's own from the environment or their defaults)."""
        if settings is None:
            return cls()
        if isinstance(settings, cls):
            return settings
        return cls(**settings.model_dump())

    @field_validator("postsales_api_keys", mode="before")
    @classmethod
    def _parse_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = json.loads(value) if value.strip() else {}
        if not isinstance(value, dict):
            raise ValueError("POSTSALES_API_KEYS must be a JSON object of token -> [scopes]")
        normalized: dict[str, Any] = {}
        for token, entry in value.items():
            if isinstance(entry, ApiKey):
                entry = entry.model_dump()
            if isinstance(entry, list):
                entry = {"scopes": entry}
            if not isinstance(entry, dict) or set(entry) - {"scopes", "owner"}:
                raise ValueError('each POSTSALES_API_KEYS entry must be a list of scopes '
                                 'or {"scopes": [...], "owner": "..."}')
            scopes = entry.get("scopes")
            if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
                raise ValueError("each POSTSALES_API_KEYS entry must map to a list of scope strings")
            normalized[token] = entry
            unknown = set(scopes) - SCOPES
            if unknown:
                raise ValueError(f"unknown scopes in POSTSALES_API_KEYS: {sorted(unknown)}")
            plain = token.removeprefix("sha256:")
            if plain.lower() in _PLACEHOLDER_TOKENS or (not token.startswith("sha256:") and len(plain) < 16):
                raise ValueError("POSTSALES_API_KEYS holds a placeholder or too-short token (need >= 16 chars)")
        return normalized

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.postsales_data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{self.postsales_data_dir / (self.service_name + '.db')}"

    def topic(self, name: str) -> str:
        return self.kafka_topic_prefix + name
