"""Money and Currency: one definition of an amount and a currency code for every service."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import TypeAdapter, ValidationError

from shared.types import Currency, Money, MoneyOut

pytestmark = pytest.mark.db_independent

money = TypeAdapter(Money)
currency = TypeAdapter(Currency)


@pytest.mark.parametrize(("given", "kept"), [("36000", "36000.00"), ("120000.5", "120000.50"), ("0", "0.00"),
                                             ("9999999999999999.99", "9999999999999999.99"), (7, "7.00")])
def test_money_accepts_decimal_strings_and_keeps_cents(given: object, kept: str) -> None:
    assert money.validate_python(given) == Decimal(kept)
    assert str(money.validate_python(given)) == kept


@pytest.mark.parametrize("bad", ["-1", "1.234", "1e5", "NaN", " 1", "1,5", "", 1.5, True, None,
                                 "10000000000000000.00"])
def test_money_refuses_what_is_not_an_exact_nonnegative_amount(bad: object) -> None:
    with pytest.raises(ValidationError):
        money.validate_python(bad)


def test_money_schema_says_what_it_accepts() -> None:
    schema = money.json_schema()
    text, whole = schema["anyOf"]
    assert text == {"type": "string", "pattern": r"^\d{1,16}(\.\d{1,2})?$"}
    assert whole == {"type": "integer", "minimum": 0, "maximum": 10**16 - 1}
    with pytest.raises(ValidationError):
        money.validate_python(10**16)
    assert TypeAdapter(MoneyOut).dump_json(Decimal("5")) == b'"5.00"'


@pytest.mark.parametrize(("given", "kept"), [("usd", "USD"), ("EUR", "EUR"), ("jPy", "JPY")])
def test_currency_is_an_iso_4217_code_kept_upper_case(given: str, kept: str) -> None:
    assert currency.validate_python(given) == kept


@pytest.mark.parametrize("bad", ["XYZ", "US", "USDD", " usd", "", 840, None])
def test_currency_refuses_unknown_codes(bad: object) -> None:
    with pytest.raises(ValidationError):
        currency.validate_python(bad)


async def test_handoff_and_lifecycle_validate_arr_and_currency_the_same(service) -> None:
    from tests.handoff.conftest import complete_body

    async with service("handoff", run_consumers=False, run_relay=False) as handoff, \
            service("lifecycle", run_consumers=False, run_relay=False, run_scheduler=False) as lifecycle:

        async def handoff_says(arr: str, cur: str) -> tuple[int, dict[str, object]]:
            body = complete_body()
            body["account"].update(arr=arr, currency=cur)
            r = await handoff.client.post("/v1/handoffs", json=body)
            return r.status_code, r.json().get("account", {})

        async def lifecycle_says(arr: str, cur: str) -> tuple[int, dict[str, object]]:
            r = await lifecycle.client.post("/v1/accounts", json={
                "id": f"acct-{arr}-{cur}", "name": "Acme", "arr": arr, "currency": cur})
            return r.status_code, r.json()

        for arr, cur in [("36000", "usd"), ("120000.5", "EUR")]:
            (hs, h), (ls, acc) = await handoff_says(arr, cur), await lifecycle_says(arr, cur)
            assert (hs, ls) == (201, 201)
            assert h["arr"] == acc["arr"] == str(Decimal(arr).quantize(Decimal("0.01")))
            assert h["currency"] == acc["currency"] == cur.upper()
        for arr, cur in [("1.234", "USD"), ("-5", "USD"), ("10000000000000000", "USD"), ("100", "XYZ")]:
            (hs, _), (ls, _) = await handoff_says(arr, cur), await lifecycle_says(arr, cur)
            assert (hs, ls) == (422, 422), (arr, cur)
