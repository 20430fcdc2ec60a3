"""Settings of the metrics service (env vars; `METRICS_<NAME>` overrides `<NAME>`)."""

from __future__ import annotations

from typing import ClassVar

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "metrics"
    default_port: ClassVar[int] = 8003
