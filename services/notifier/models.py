"""Database models of the notifier service."""

from __future__ import annotations

from shared.db import make_base

Base, infra = make_base()
