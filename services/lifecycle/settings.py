"""Settings of the lifecycle service (env vars; `LIFECYCLE_<NAME>` overrides `<NAME>`)."""

from __future__ import annotations

from typing import ClassVar

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "lifecycle"
    default_port: ClassVar[int] = 8002
