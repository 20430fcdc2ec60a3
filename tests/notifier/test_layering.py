"""The notifier follows the suite's layering: every query lives in a repository module."""

from __future__ import annotations

import re
from pathlib import Path

import services.notifier

ROOT = Path(services.notifier.__file__).parent
QUERY = re.compile(r"(?<![.\w])(?<!def )(select|update|delete)\(|session\.(execute|get|add|add_all|delete|scalars?)\(|"
                   r"^from sqlalchemy import", re.M)


def test_queries_only_in_repositories() -> None:
    offenders = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.endswith("repository.py") or rel.startswith("migrations/") or rel == "models.py":
            continue
        for m in QUERY.finditer(path.read_text()):
            offenders.append(f"{rel}: {m.group(0)}")
    assert offenders == []


def test_endpoints_only_parse_authorize_and_call_the_service() -> None:
    for path in sorted(ROOT.glob("*/endpoints.py")):
        text = path.read_text()
        assert "repository" not in text and "sqlalchemy" not in text, path
