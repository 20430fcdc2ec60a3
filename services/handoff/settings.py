"""Settings of the handoff service (env vars; `HANDOFF_<NAME>` overrides `<NAME>`)."""

from __future__ import annotations

from typing import ClassVar

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "handoff"
    default_port: ClassVar[int] = 8001
