from __future__ import annotations

import datetime as dt

import pytest
from pydantic import BaseModel, ValidationError

from shared.types import Bool, Date, DateTime, Int


class Model(BaseModel):
    day: Date | None = None
    at: DateTime | None = None
    flag: Bool = False
    count: Int = 0


def test_well_formed_values_pass() -> None:
    m = Model.model_validate({"day": "2026-11-23", "at": "2026-11-23T09:30:00Z", "flag": True, "count": 3})
    assert m.day == dt.date(2026, 11, 23) and m.at == dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize("doc", [
    {"day": 0}, {"day": "0"}, {"day": "2026-11-23T00:00:00Z"}, {"at": 0}, {"at": "2026-11-23"},
    {"at": "2026-11-23T09:30:00"}, {"flag": 0}, {"flag": "yes"}, {"count": "5"}, {"count": 1.5},
])
def test_lax_coercions_are_refused(doc: dict) -> None:
    with pytest.raises(ValidationError):
        Model.model_validate(doc)


def test_schema_is_unchanged() -> None:
    props = Model.model_json_schema()["properties"]
    assert props["day"]["anyOf"][0] == {"format": "date", "type": "string"}
    assert props["at"]["anyOf"][0] == {"format": "date-time", "type": "string"}
