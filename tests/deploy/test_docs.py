"""The docs say what the code does: every setting and event type is documented, every event example
is valid, and no link leads outside the repository."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from deploy import envdoc
from shared.events.envelope import CloudEvent
from shared.events.registry import EVENT_TYPES, TOPICS, USAGE_EVENT_TYPE, validate_event
from shared.settings import ServiceSettings

ROOT = Path(__file__).parents[2]
API = ROOT / "docs" / "api.md"
pytestmark = pytest.mark.db_independent
# Written on other branches of this work; linked before they land.
ELSEWHERE = {"architecture.md", "health.md", "notifier.md", "risk.md", "playbooks.md", "console.md"}


def documented_variables() -> set[str]:
    return set(re.findall(r"^\| `([A-Z0-9_]+)`", API.read_text(), flags=re.M))


def test_the_configuration_tables_list_every_settings_field() -> None:
    variables = documented_variables()
    shared = set(ServiceSettings.model_fields)
    missing = [name.upper() for name in shared if name.upper() not in variables]
    for service in envdoc.SERVICES:
        own = set(envdoc.settings_class(service).model_fields) - shared
        missing += [f"{service.upper()}_{n.upper()}" for n in own if f"{service.upper()}_{n.upper()}" not in variables]
    assert missing == [], f"undocumented settings {missing}: run `python -m deploy.envdoc --write`"


def test_the_event_catalogue_lists_every_type_and_the_generator_fills_both_blocks() -> None:
    text = API.read_text()
    for name in [*EVENT_TYPES, USAGE_EVENT_TYPE.name]:
        assert f"| `{name}` |" in text, f"{name} missing from the catalogue: run `python -m deploy.envdoc --write`"
    rendered = envdoc.render(text)
    for block in envdoc.BLOCKS:
        start, end = envdoc.markers(block)
        body = rendered.split(start, 1)[1].split(end, 1)[0]
        assert body.count("\n|") >= 5, block


def test_every_event_example_is_valid_and_every_topic_has_one() -> None:
    examples = re.findall(r"^```json event\n(.*?)^```", API.read_text(), flags=re.S | re.M)
    topics = []
    for raw in examples:
        event = CloudEvent.model_validate(json.loads(raw))
        topics.append(validate_event(event).topic)
    assert sorted(topics) == sorted(TOPICS)


def test_links_stay_in_the_repository_and_resolve() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if re.match(r"^[a-z]+://", target) or target.startswith("mailto:"):
                continue
            path = (page.parent / target).resolve()
            assert path.is_relative_to(ROOT), f"{page.name} links outside the repository: {target}"
            assert path.exists() or path.name in ELSEWHERE, f"{page.name}: broken link {target}"
        assert "shared/DESIGN.md" not in page.read_text(), page.name


def test_env_example_points_to_the_configuration_table() -> None:
    text = (ROOT / ".env.example").read_text()
    assert "docs/api.md#configuration" in text
    assert "\n## Configuration\n" in API.read_text()
    for variable in re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, flags=re.M):
        assert variable in documented_variables() or variable == "POSTGRES_PASSWORD" or \
            variable in API.read_text(), f".env.example sets {variable}, which the docs do not describe"
