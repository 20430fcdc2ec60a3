"""/docs and /redoc render each service's operations in a real headless Chromium, with no network."""

from __future__ import annotations

import shutil
import subprocess
import tempfile

import httpx
import pytest

from shared.testing.suite import SERVICES

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it)"),
    pytest.mark.db_independent,
]


def render(url: str) -> str:
    with tempfile.TemporaryDirectory() as profile:
        out = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--virtual-time-budget=4000", "--dump-dom", url],
            capture_output=True, text=True, timeout=90,
        )
    return out.stdout


@pytest.mark.parametrize("page", ["docs", "redoc"])
def test_api_docs_render_every_operation_offline(suite, page: str) -> None:
    for name in SERVICES:
        spec = httpx.get(suite.url(name) + "/openapi.json").json()
        paths = [p for p in spec["paths"] if p.startswith("/v1")]
        dom = render(f"{suite.url(name)}/{page}")
        assert spec["info"]["title"] in dom, f"{name} /{page} did not render"
        missing = [p for p in paths if p not in dom]
        assert not missing, f"{name} /{page} lacks {missing[:5]}"
