"""Settings from the environment: the per-service prefix is a source of its own, parsed the same way."""

from __future__ import annotations

import pytest

from services.handoff.settings import Settings as HandoffSettings
from services.lifecycle.settings import Settings as LifecycleSettings
from services.notifier.settings import Settings as NotifierSettings

pytestmark = pytest.mark.db_independent


@pytest.mark.parametrize("name", ["COMPLETENESS_CHECKLIST", "HANDOFF_COMPLETENESS_CHECKLIST"])
@pytest.mark.parametrize("value", ["goals,commitments", " goals , commitments ", '["goals", "commitments"]'])
def test_list_settings_parse_the_same_with_or_without_the_prefix(monkeypatch: pytest.MonkeyPatch, name: str,
                                                                 value: str) -> None:
    monkeypatch.setenv(name, value)
    assert HandoffSettings().completeness_checklist == ["goals", "commitments"]


@pytest.mark.parametrize("name", ["RENEWAL_WINDOWS", "LIFECYCLE_RENEWAL_WINDOWS"])
def test_int_lists_too(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(name, "30,90")
    assert LifecycleSettings().renewal_windows == [90, 30]


def test_the_prefixed_name_wins_over_the_plain_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPLETENESS_CHECKLIST", "goals")
    monkeypatch.setenv("HANDOFF_COMPLETENESS_CHECKLIST", "commitments")
    monkeypatch.setenv("KAFKA_TOPIC_PREFIX", "plain.")
    monkeypatch.setenv("HANDOFF_KAFKA_TOPIC_PREFIX", "prefixed.")
    monkeypatch.setenv("EVALUATION_INTERVAL", "5")
    s = HandoffSettings()
    assert s.completeness_checklist == ["commitments"]
    assert s.kafka_topic_prefix == "prefixed."
    # Another service's prefix is not ours.
    assert LifecycleSettings().kafka_topic_prefix == "plain."
    assert NotifierSettings().evaluation_interval == 5


def test_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HANDOFF_OVERDUE_BATCH_SIZE", "9")
    assert HandoffSettings(overdue_batch_size=3).overdue_batch_size == 3


def test_json_settings_and_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = '{"a-long-enough-token-123": {"scopes": ["admin"], "owner": "jo"}}'
    monkeypatch.setenv("HANDOFF_POSTSALES_API_KEYS", keys)
    monkeypatch.setenv("HANDOFF_PORT", "9100")
    s = HandoffSettings()
    assert s.postsales_api_keys["a-long-enough-token-123"].owner == "jo"
    assert s.port == 9100
    assert LifecycleSettings().port == 8002  # the service's default port when none is set


def test_bad_values_name_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HANDOFF_COMPLETENESS_CHECKLIST", "goals,nonsense")
    with pytest.raises(ValueError, match="nonsense"):
        HandoffSettings()
