"""Unit tests of the console's pieces that need no service: charts, the session box, settings, language,
portfolio ordering."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest
from pydantic import ValidationError

from services.console import charts
from services.console import portfolio as pf
from services.console.i18n import pick_language
from services.console.session import Session, SessionBox
from services.console.settings import Settings
from services.console.web import local

pytestmark = pytest.mark.db_independent
SVG = "{http://www.w3.org/2000/svg}"
KEY = "unit-test-session-key-7fQ2xLp9Rw3mZk8V"


def parse(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))  # well-formed XML or this raises


def test_line_chart_has_a_title_a_description_and_a_marker_with_a_tooltip_per_point() -> None:
    t0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    points = [(t0 + dt.timedelta(days=i), v) for i, v in enumerate([80.0, 65.5, 38.0])]
    svg = parse(charts.line_chart(points, title="Health trend", thresholds=[(70, "green ≥ 70")]))
    assert svg.get("role") == "img" and svg.get("aria-labelledby")
    assert svg.find(f"{SVG}title").text == "Health trend"
    desc = svg.find(f"{SVG}desc").text
    assert "3 points" in desc and "latest 38" in desc and "lowest 38" in desc and "highest 80" in desc
    circles = svg.findall(f"{SVG}circle")
    assert [c.find(f"{SVG}title").text for c in circles] == ["2026-11-01: 80", "2026-11-02: 65.5", "2026-11-03: 38"]
    ys = [float(c.get("cy")) for c in circles]
    assert ys[0] < ys[1] < ys[2]  # higher scores sit higher
    assert any(t.text == "green ≥ 70" for t in svg.iter(f"{SVG}text"))
    assert "style=" not in str(charts.line_chart(points, title="x"))


def test_bar_chart_fills_missing_days_with_zero_and_describes_totals() -> None:
    start, end = dt.date(2026, 11, 1), dt.date(2026, 11, 30)
    svg = parse(charts.bar_chart([(dt.date(2026, 11, 3), 10.0), (dt.date(2026, 11, 4), 5.0),
                                  (dt.date(2026, 10, 1), 99.0)], title="Usage", start=start, end=end))
    bars = svg.findall(f"{SVG}rect")
    assert len(bars) == 30
    tips = [b.find(f"{SVG}title").text for b in bars]
    assert tips[2] == "2026-11-03: 10" and tips[0] == "2026-11-01: 0"
    heights = [float(b.get("height")) for b in bars]
    assert heights[2] == max(heights) and heights[3] == pytest.approx(heights[2] / 2)
    assert "15 in total, 2 days with activity, peak 10" in svg.find(f"{SVG}desc").text  # out-of-range day ignored


def test_hbar_chart_marks_negative_bars_with_a_pattern_not_only_colour() -> None:
    svg = parse(charts.hbar_chart([("usage_trend_30d", 0.8, "-40% (+0.80)"), ("nps_last", -0.3, "9 (-0.30)")],
                                  title="Risk drivers", positive_label="raises risk", negative_label="lowers risk"))
    bars = [r for r in svg.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert bars[0].get("fill").startswith("#") and bars[1].get("fill").startswith("url(#")
    assert "raises risk" in bars[0].find(f"{SVG}title").text and "lowers risk" in bars[1].find(f"{SVG}title").text
    assert float(bars[0].get("x")) > float(bars[1].get("x"))  # the negative bar extends left of zero
    texts = [t.text for t in svg.iter(f"{SVG}text")]
    assert "usage_trend_30d" in texts and "-40% (+0.80)" in texts


def test_charts_escape_every_text_and_say_when_empty() -> None:
    evil = '<script>alert("x")</script>'
    for markup in (charts.line_chart([(dt.date(2026, 1, 1), 1.0)], title=evil),
                   charts.hbar_chart([(evil, 1.0, evil)], title=evil),
                   charts.bar_chart([], title=evil, start=dt.date(2026, 1, 1), end=dt.date(2026, 1, 2), empty=evil)):
        assert "<script" not in str(markup)
        parse(markup)
    empty = parse(charts.line_chart([], title="Trend", empty="no data yet"))
    assert any(t.text == "no data yet" for t in empty.iter(f"{SVG}text"))


def test_session_box_round_trips_and_refuses_tampering_and_other_keys() -> None:
    box = SessionBox(KEY)
    s = Session(token="secret-token-0123456789", owner="jane", expires=1e12)
    s.say("ok", "hello")
    sealed = box.seal(s)
    assert "secret-token" not in sealed and "jane" not in sealed
    opened = box.open(sealed)
    assert opened is not None and opened.token == s.token and opened.csrf == s.csrf
    assert opened.flash == [("ok", "hello")]
    assert box.seal(s) != sealed  # a fresh nonce every time
    flipped = sealed[:10] + ("A" if sealed[10] != "A" else "B") + sealed[11:]
    assert box.open(flipped) is None
    assert SessionBox(KEY + "x").open(sealed) is None
    assert box.open("") is None and box.open("%%%") is None and box.open("A" * 9000) is None


@pytest.mark.parametrize("key", ["", "changeme", "replace-me-with-a-long-random-secret-please",
                                 "short-key", "a" * 40, "example-example-example-example-1234"])
def test_placeholder_or_weak_session_keys_are_refused(key: str) -> None:
    with pytest.raises(ValidationError) as err:
        Settings(session_key=key)
    assert "CONSOLE_SESSION_KEY" in str(err.value)


def test_settings_read_the_console_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSOLE_SESSION_KEY", KEY)
    monkeypatch.setenv("CONSOLE_METRICS_URL", "http://metrics.internal:8003/")
    s = Settings()
    assert s.port == 8005 and s.upstream_url("metrics") == "http://metrics.internal:8003"
    assert s.upstream_url("handoff") == "http://127.0.0.1:8001"
    assert KEY not in repr(s)


def test_language_choice() -> None:
    assert pick_language(None, "ja-JP,ja;q=0.9,en;q=0.8") == "ja"
    assert pick_language(None, "en;q=0.5,ja;q=0.9") == "ja"
    assert pick_language(None, "fr-FR,de") == "en"
    assert pick_language("en", "ja") == "en" and pick_language("xx", "ja") == "ja"


def test_only_local_redirects() -> None:
    assert local("/accounts/a?x=1") == "/accounts/a?x=1"
    for bad in ("https://evil.example/", "//evil.example", "/\\evil.example", "javascript:alert(1)", None, ""):
        assert local(bad) == "/"


def test_default_order_is_arr_at_risk_then_arr() -> None:
    accounts = [
        {"id": "a", "name": "A", "arr": "100000", "stage": "adoption"},
        {"id": "b", "name": "B", "arr": "50000", "stage": "adoption"},
        {"id": "c", "name": "C", "arr": "300000", "stage": "adoption"},
        {"id": "d", "name": "D", "arr": "900000", "stage": "adoption", "risk": {"probability": 0.01, "band": "low"}},
        {"id": "e", "name": "E", "arr": None, "stage": "adoption"},
    ]
    risks = {"a": {"probability": 0.6, "band": "high"}, "b": {"probability": 0.9, "band": "high"}}
    rows = pf.sort_rows(pf.build_rows(accounts, risks, dt.date(2026, 12, 1)))
    # at risk: a 60k, b 45k, d 9k; then unknown risk by ARR: c 300k, e (no ARR) last.
    assert [r.id for r in rows] == ["a", "b", "d", "c", "e"]
    assert rows[0].arr_at_risk == Decimal("60000.0")
    assert [r.id for r in pf.filter_rows(rows, risk="high")] == ["a", "b"]
    summary = pf.summarize(rows)
    assert summary.accounts == 5 and summary.high_risk == 2 and summary.arr == {"": Decimal("1350000")}
    assert summary.arr_at_risk == {"": Decimal("114000.00")}
    page, current, pages = pf.paginate(rows, 9, 2)
    assert (current, pages, [r.id for r in page]) == (3, 3, ["e"])


def test_the_command_refuses_a_placeholder_key_without_printing_it() -> None:
    import os
    import subprocess
    import sys

    weak = "changeme-please-changeme-please-0123"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSOLE_")} | {"CONSOLE_SESSION_KEY": weak}
    out = subprocess.run([sys.executable, "-m", "services.console"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2 and "CONSOLE_SESSION_KEY is a placeholder" in out.stderr
    assert weak not in out.stderr + out.stdout
    migrate = subprocess.run([sys.executable, "-m", "services.console", "migrate"], env=env, capture_output=True,
                             text=True, timeout=60)
    assert migrate.returncode == 0 and "nothing to migrate" in migrate.stdout
