"""Input types that refuse what pydantic's lax mode would quietly coerce.

Lax mode turns ``0`` into ``1970-01-01``, ``1`` into ``true`` and ``"5"`` into ``5``: a client bug
then becomes stored data. Use these in request models and query parameters instead of the bare types;
the OpenAPI schema is unchanged.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    PlainSerializer,
    StrictBool,
    StrictInt,
    WithJsonSchema,
)

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _date_only(value: Any) -> Any:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and _DATE.fullmatch(value):
        return value
    raise ValueError("must be a date as YYYY-MM-DD")


def _datetime_only(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and _DATETIME.match(value):
        return value
    raise ValueError("must be an RFC 3339 date-time with an offset, e.g. 2026-11-23T09:30:00Z")


def _number_only(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    return value


Date = Annotated[dt.date, BeforeValidator(_date_only)]
"""A calendar date given as ``YYYY-MM-DD`` (never a number)."""

DateTime = Annotated[AwareDatetime, BeforeValidator(_datetime_only)]
"""An RFC 3339 timestamp with an offset (never a number, never naive)."""

Number = Annotated[float, BeforeValidator(_number_only)]
"""A JSON number (not a boolean, not a numeric string)."""

MONEY_DECIMALS = 2
MONEY_MAX_DIGITS = 18  # NUMERIC(18, 2) where a database stores money as a number
_CENT = Decimal(1).scaleb(-MONEY_DECIMALS)
_DECIMAL = re.compile(r"-?\d+(\.\d+)?")

# ISO 4217 active codes (including fund and precious-metal codes, without the testing/no-currency XTS/XXX).
ISO_4217 = frozenset({
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN", "BHD", "BIF",
    "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHE", "CHF", "CHW", "CLF",
    "CLP", "CNY", "COP", "COU", "CRC", "CUC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB",
    "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR",
    "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD",
    "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR",
    "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK",
    "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP",
    "SLE", "SLL", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD",
    "TWD", "TZS", "UAH", "UGX", "USD", "USN", "UYI", "UYU", "UYW", "UZS", "VED", "VES", "VND", "VUV", "WST", "XAF",
    "XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XCD", "XCG", "XDR", "XOF", "XPD", "XPF", "XPT", "XSU", "XUA", "YER",
    "ZAR", "ZMW", "ZWG", "ZWL",
})


_MONEY_MAX_WHOLE = 10 ** (MONEY_MAX_DIGITS - MONEY_DECIMALS) - 1


def _money_only(value: Any) -> Any:
    if isinstance(value, Decimal) or (isinstance(value, str) and _DECIMAL.fullmatch(value)):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        if value > _MONEY_MAX_WHOLE:
            raise ValueError(f"must be at most {_MONEY_MAX_WHOLE}")
        return value
    raise ValueError('must be a decimal string, e.g. "120000.00"')


def _currency_code(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("must be an ISO 4217 currency code, e.g. EUR")
    code = value.upper()
    if code not in ISO_4217:
        raise ValueError(f"'{value}' is not an ISO 4217 currency code")
    return code


_MONEY_DOC = ("An amount: a decimal string, at least 0, with at most 2 decimals and 16 integer digits "
              "(a whole number is accepted too).")
Money = Annotated[
    Decimal,
    BeforeValidator(_money_only),
    Field(ge=0, max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMALS),
    AfterValidator(lambda v: v.quantize(_CENT)),
    WithJsonSchema({"anyOf": [{"type": "string", "pattern": r"^\d{1,16}(\.\d{1,2})?$"},
                              {"type": "integer", "minimum": 0, "maximum": _MONEY_MAX_WHOLE}],
                    "examples": ["120000.00"], "description": _MONEY_DOC}),
]
"""An amount of money (ARR, an opportunity): a decimal string >= 0 with at most two decimals, kept to the cent."""

MoneyOut = Annotated[Decimal, PlainSerializer(lambda v: f"{v:.2f}", return_type=str, when_used="json"),
                     Field(examples=["120000.00"])]
"""An amount in a response: always a decimal string with two decimals."""

Currency = Annotated[
    str,
    BeforeValidator(_currency_code),
    WithJsonSchema({"type": "string", "pattern": "^[A-Za-z]{3}$", "examples": ["EUR"],
                    "description": "ISO 4217 code (any case; stored upper-case)."}),
]
"""An ISO 4217 currency code, given in any case and kept upper-case."""

Bool = StrictBool
"""``true`` / ``false`` only (JSON bodies; query strings parse ``true``/``false`` before this)."""

Int = StrictInt
"""An integer in a JSON body (not a numeric string, not a float)."""


MIN_DATE = dt.date(1900, 1, 1)
MAX_DATE = dt.date(2999, 12, 31)


def _in_calendar(value: dt.date) -> dt.date:
    if not MIN_DATE <= value <= MAX_DATE:
        raise ValueError(f"must be a date from {MIN_DATE.isoformat()} to {MAX_DATE.isoformat()}")
    return value


BoundedDate = Annotated[dt.date, BeforeValidator(_date_only), AfterValidator(_in_calendar)]
"""A ``YYYY-MM-DD`` date from 1900-01-01 to 2999-12-31: for query parameters and periods, so that no date
computed from it (a default window before it, the day after it) leaves the calendar (a 422, never a 500)."""

__all__ = ["Bool", "BoundedDate", "Currency", "Date", "DateTime", "Int", "Money", "MoneyOut", "Number"]
