"""Database models of the lifecycle service."""

from __future__ import annotations

from shared.db import make_base

Base, infra = make_base()
