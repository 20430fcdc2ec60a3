"""The usage envelope: what the hot path accepts and how it says what is wrong."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest

from services.metrics.usage.envelope import UsageDecoder, decode_usage
from services.metrics.validation import Bounds
from shared.events.envelope import InvalidEvent

pytestmark = pytest.mark.db_independent

# GOOD is a fixed date: decoded with bounds that accept history that old, whenever the tests run.
decode_history = UsageDecoder(Bounds(max_age=dt.timedelta(days=36500)))

GOOD: dict[str, Any] = {"specversion": "1.0", "id": "e1", "source": "/web", "type": "usage.login",
                        "time": "2026-11-20T09:30:00+02:00", "subject": "acme", "data": {"user_id": "u1"}}


def _at(delta: dt.timedelta) -> str:
    return (dt.datetime.now(dt.UTC) + delta).isoformat()


def encode(**changes: Any) -> bytes:
    doc = {**GOOD, **changes}
    return json.dumps({k: v for k, v in doc.items() if v is not ...}).encode()


def test_a_valid_event_decodes_with_defaults_and_ignores_extensions() -> None:
    ev = decode_history(encode(tenant="eu", data={"user_id": "u1", "extra": [1]}))
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
        decode_history(raw)
    assert says in str(caught.value)


@pytest.mark.parametrize(("raw", "says"), [
    (encode(time=_at(dt.timedelta(0)), data={"user_id": "u", "quantity": 1e9 + 1}), "data.quantity: 1e+09"),
    (encode(time=_at(dt.timedelta(0)), data={"user_id": "u", "quantity": 1e308}), "METRICS_MAX_QUANTITY"),
    # Encoded when the test runs, not when it is collected: a run may start minutes later.
    (lambda: encode(time=_at(dt.timedelta(days=1, minutes=5))), "METRICS_MAX_FUTURE_SKEW"),
    (encode(time="2099-01-01T00:00:00Z"), "time: 2099-01-01T00:00:00+00:00 is more than 1 day in the future"),
    (encode(time="1900-01-01T00:00:00Z"), "older than the maximum event age of 1096 days"),
    (encode(time="0001-01-01T00:00:00+01:00"), "METRICS_MAX_EVENT_AGE"),
    (encode(time="9999-12-31T23:59:59-01:00"), "METRICS_MAX_FUTURE_SKEW"),
    (encode(time=_at(-dt.timedelta(days=1097))), "METRICS_MAX_EVENT_AGE"),
])
def test_out_of_bounds_quantities_and_times_are_refused(raw: bytes | Callable[[], bytes], says: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        decode_usage(raw() if callable(raw) else raw)
    assert says in str(caught.value)


def test_bounds_are_inclusive_and_configurable() -> None:
    now = _at(dt.timedelta(0))
    assert decode_usage(encode(time=now, data={"user_id": "u", "quantity": 1e9})).data.quantity == 1e9
    assert decode_usage(encode(time=now, data={"user_id": "u", "quantity": 0})).data.quantity == 0
    decode_usage(encode(time=_at(dt.timedelta(hours=23))))
    decode_usage(encode(time=_at(-dt.timedelta(days=1095))))  # history up to 3 years can be imported
    strict = UsageDecoder(Bounds(max_quantity=10, max_future_skew=dt.timedelta(0),
                                 max_age=dt.timedelta(days=30)))
    assert strict(encode(time=now, data={"user_id": "u", "quantity": 10})).data.quantity == 10
    for raw, says in [(encode(time=now, data={"user_id": "u", "quantity": 10.5}), "maximum of 10"),
                      (encode(time=_at(dt.timedelta(minutes=1))), "0 s in the future"),
                      (encode(time=_at(-dt.timedelta(days=31))), "30 days")]:
        with pytest.raises(InvalidEvent) as caught:
            strict(raw)
        assert says in str(caught.value)
