"""Engagement counts from when the relationship began: an imported account whose contract started
months ago, with no touchpoint, is not a fresh contact."""

from __future__ import annotations

import datetime as dt

from services.metrics.health.scoring import Inputs, engagement
from services.metrics.health.service import _relationship_start
from services.metrics.models import Account

NOW = dt.datetime(2026, 12, 2, 12, tzinfo=dt.UTC)


def test_the_contract_start_wins_when_it_is_earlier_than_the_record() -> None:
    imported = Account(account_id="a", created_at=NOW, contract_start=dt.date(2026, 2, 1))
    assert _relationship_start(imported) == dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
    # A contract starting after the record was made (a renewal date set ahead) does not move the start later.
    ahead = Account(account_id="b", created_at=NOW - dt.timedelta(days=3), contract_start=dt.date(2027, 1, 1))
    assert _relationship_start(ahead) == NOW - dt.timedelta(days=3)
    assert _relationship_start(Account(account_id="c", created_at=None, contract_start=None)) is None


def test_an_imported_account_without_touchpoints_has_a_stale_engagement() -> None:
    imported = Account(account_id="a", created_at=NOW, contract_start=dt.date(2026, 2, 1))
    fresh = Account(account_id="b", created_at=NOW, contract_start=None)
    old = engagement(Inputs(now=NOW, account_since=_relationship_start(imported)))
    new = engagement(Inputs(now=NOW, account_since=_relationship_start(fresh)))
    assert new.value == 100 and old.value is not None and old.value < 50
    assert "started 304 days ago" in old.explanation
