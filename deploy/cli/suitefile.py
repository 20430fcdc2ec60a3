"""``data/suite.json``: what ``make run`` started, so the CLI finds the local suite without flags.

The runner writes it atomically once every service is healthy and marks it stopped on exit. The CLI
trusts it only while its runner process is alive, and sends the development token only to the
addresses it lists (never to a default or guessed address).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FILE_NAME = "suite.json"


@dataclass
class SuiteFile:
    services: dict[str, str]
    bootstrap: str
    topic_prefix: str = ""
    embedded_broker: bool = False
    token_file: str | None = None
    databases: dict[str, str] = field(default_factory=dict)
    pid: int = 0
    status: str = "running"
    started_at: str = ""

    def token(self) -> str | None:
        if not self.token_file:
            return None
        try:
            return Path(self.token_file).read_text().strip() or None
        except OSError:
            return None

    def knows(self, url: str) -> bool:
        """Whether ``url`` is one of the suite's own service addresses (where its token may go)."""
        return url.rstrip("/") in {u.rstrip("/") for u in self.services.values()}


def data_dir() -> Path:
    return Path(os.environ.get("POSTSALES_DATA_DIR") or "data")


def path(directory: Path | None = None) -> Path:
    return (directory or data_dir()) / FILE_NAME


def write(target: Path, suite: SuiteFile) -> None:
    """Write atomically (temp file + rename), mode 0600: readers never see half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".suite-", suffix=".json", dir=target.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(asdict(suite), f, indent=2)
            f.write("\n")
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def mark_stopped(target: Path, pid: int) -> None:
    """Mark the file stopped, unless another runner (another pid) has written it since."""
    suite = read_any(target)
    if suite is not None and suite.pid == pid:
        suite.status = "stopped"
        write(target, suite)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_any(target: Path) -> SuiteFile | None:
    try:
        raw: Any = json.loads(target.read_text())
        known = set(SuiteFile.__dataclass_fields__)
        return SuiteFile(**{k: v for k, v in raw.items() if k in known})
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def read(target: Path | None = None) -> SuiteFile | None:
    """The running local suite, or None (no file, unreadable, stopped, or its runner is gone)."""
    suite = read_any(target or path())
    if suite is None or suite.status != "running" or not _alive(suite.pid):
        return None
    return suite
