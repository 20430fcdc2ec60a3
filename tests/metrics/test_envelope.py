"""The usage envelope: what the hot path accepts and how it says what is wrong."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from services.metrics.usage.envelope import decode_usage
from shared.events.envelope import InvalidEvent

pytestmark = pytest.mark.db_independent

GOOD: dict[str, Any] = {"specversion": "1.0", "id": "e1", "source": "/web", "type": "usage.login",
                        "time": "2026-11-20T09:30:00+02:00", "subject": "acme", "data": {"user_id": "u1"}}


def encode(**changes: Any) -> bytes:
    doc = {**GOOD, **changes}
    return json.dumps({k: v for k, v in doc.items() if v is not ...}).encode()


def test_a_valid_event_decodes_with_defaults_and_ignores_extensions() -> None:
    ev = decode_usage(encode(tenant="eu", data={"user_id": "u1", "extra": [1]}))
    assert (ev.source, ev.id, ev.subject, ev.type) == ("/web", "e1", "acme", "usage.login")
    assert ev.time == dt.datetime(2026, 11, 20, 7, 30, tzinfo=dt.UTC)
    assert (ev.data.user_id, ev.data.feature, ev.data.quantity) == ("u1", None, 1.0)
    assert ev.dedup_key == ("/web", "e1")


@pytest.mark.parametrize(("raw", "says"), [
    (b"{not json", "not JSON"),
    (None, "empty message"),
    (b"[]", "(event): Expected `object`"),
    (encode(specversion="0.3"), "specversion"),
    (encode(time="2026-11-20T09:30:00"), "time: Expected `datetime` with a timezone"),
    (encode(time=1763631000), "time: Expected `datetime`"),
    (encode(type="usage."), "type"),
    (encode(type="postsales.survey.nps"), "type"),
    (encode(subject=""), "subject"),
    (encode(id=...), "missing required field `id`"),
    (encode(data={"feature": "x"}), "data: Object missing required field `user_id`"),
    (encode(data={"user_id": "u" * 201}), "data.user_id"),
    (encode(data={"user_id": "u", "quantity": -1}), "data.quantity"),
    (encode(data={"user_id": "u", "quantity": True}), "data.quantity"),
    (b'{"specversion":"1.0","id":"e","source":"s","type":"usage.x","time":"2026-11-20T00:00:00Z",'
     b'"subject":"a","data":{"user_id":"u","quantity":1e999}}', "data.quantity"),
])
def test_an_invalid_event_is_refused_with_where_and_why(raw: bytes | None, says: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        decode_usage(raw)
    assert says in str(caught.value)
