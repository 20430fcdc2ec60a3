"""Settings of the notifier service (env vars; `NOTIFIER_<NAME>` overrides `<NAME>`)."""

from __future__ import annotations

from typing import ClassVar

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "notifier"
    default_port: ClassVar[int] = 8004
