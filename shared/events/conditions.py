"""The suite's one condition language, used by notifier rules and lifecycle playbooks: event-type
patterns, paths into an event, conditions, durations, labels."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from shared.events import CloudEvent
from shared.events.registry import check_event_type_pattern

OPS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "exists")
PATH_ROOTS = ("type", "source", "id", "subject", "time", "data", "account")
ACCOUNT_FIELDS = ("id", "name", "owner", "stage", "health_band", "health_score")
_SEGMENT = r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+"
_PATH_RE = re.compile(rf"^(?:{_SEGMENT})(?:\.(?:{_SEGMENT}))*$")
_TYPE_RE = re.compile(r"^[A-Za-z0-9_.\-]+\*?$|^\*$")
_DURATION_RE = re.compile(r"^(\d+)(ms|s|m|h|d)$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_DURATION = 366 * 86400


class RuleError(ValueError):
    """A rule part that can't be evaluated; ``loc`` says where."""

    def __init__(self, loc: list[str | int], msg: str) -> None:
        super().__init__(msg)
        self.loc = loc
        self.msg = msg


def parse_duration(text: str) -> float:
    """Seconds in ``"30s"``, ``"5m"``, ``"4h"``, ``"1d"``, ``"250ms"`` (``"0s"`` allowed)."""
    m = _DURATION_RE.match(text.strip()) if isinstance(text, str) else None
    if not m:
        raise ValueError(f"'{text}' is not a duration like 30s, 5m, 4h or 1d")
    seconds = int(m.group(1)) * _UNITS[m.group(2)]
    if seconds > MAX_DURATION:
        raise ValueError(f"'{text}' is longer than 366 days")
    return float(seconds)


def check_event_type(pattern: str) -> None:
    """A well-formed type or prefix ending in ``*`` that names (a prefix of) a registered type."""
    if not _TYPE_RE.match(pattern) or "*" in pattern[:-1]:
        raise ValueError("event_type must be an event type or a prefix ending in '*' (e.g. postsales.ticket.*)")
    check_event_type_pattern(pattern)


def type_matches(pattern: str, event_type: str) -> bool:
    if pattern.endswith("*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


def could_match_usage(pattern: str) -> bool:
    """Whether a pattern can match a ``usage.*`` event."""
    prefix = pattern[:-1] if pattern.endswith("*") else pattern
    return prefix.startswith("usage.") or "usage.".startswith(prefix)


def check_path(path: str) -> None:
    if not isinstance(path, str) or not _PATH_RE.match(path):
        raise ValueError(f"'{path}' is not a dotted path like data.score")
    parts = path.split(".")
    if parts[0] not in PATH_ROOTS:
        raise ValueError(f"path '{path}' must start with one of {', '.join(PATH_ROOTS)}")
    if parts[0] in ("type", "source", "id", "subject", "time") and len(parts) > 1:
        raise ValueError(f"'{parts[0]}' has no fields ('{path}')")
    if parts[0] == "account" and (len(parts) != 2 or parts[1] not in ACCOUNT_FIELDS):
        raise ValueError(f"account paths are account.<{'|'.join(ACCOUNT_FIELDS)}> ('{path}')")


def check_conditions(conditions: Any, loc: list[str | int]) -> None:
    """Raise :class:`RuleError` for anything in ``conditions`` that can't be evaluated."""
    if not isinstance(conditions, dict):
        raise RuleError(loc, "conditions must be an object of path -> {op: value}")
    for path, spec in conditions.items():
        try:
            check_path(path)
        except ValueError as exc:
            raise RuleError([*loc, path], str(exc)) from None
        if not isinstance(spec, dict) or not spec:
            raise RuleError([*loc, path], "a condition is an object {op: value}, e.g. {\"lte\": 6}")
        for op, value in spec.items():
            where = [*loc, path, op]
            if op not in OPS:
                raise RuleError(where, f"unknown operator '{op}'; use one of {', '.join(OPS)}")
            if op == "in" and not isinstance(value, list):
                raise RuleError(where, "'in' needs a list")
            if op == "exists" and not isinstance(value, bool):
                raise RuleError(where, "'exists' needs true or false")
            if op in ("lt", "lte", "gt", "gte") and (
                    isinstance(value, bool) or not isinstance(value, int | float | str)):
                raise RuleError(where, f"'{op}' needs a number or a string")
            if op in ("eq", "ne") and isinstance(value, dict | list):
                raise RuleError(where, f"'{op}' needs a scalar value")


def event_context(event: CloudEvent, account: Mapping[str, Any] | None) -> dict[str, Any]:
    """The document rule paths are resolved against."""
    acct = {"id": event.subject, **{k: None for k in ACCOUNT_FIELDS if k != "id"}}
    if account:
        acct.update({k: v for k, v in account.items() if k in ACCOUNT_FIELDS})
    return {"type": event.type, "source": event.source, "id": event.id, "subject": event.subject,
            "time": event.time.isoformat(), "data": event.data, "account": acct}


_MISSING = object()


def resolve(doc: Mapping[str, Any], path: str) -> Any:
    cur: Any = doc
    for part in path.split("."):
        if isinstance(cur, Mapping) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return _MISSING
    return cur


def _compare(op: str, actual: Any, expected: Any) -> bool:
    if op == "exists":
        return bool((actual is not _MISSING and actual is not None) == expected)
    if op == "ne":
        return bool(actual is _MISSING or actual != expected)
    if actual is _MISSING or actual is None:
        return False
    if op == "eq":
        return bool(actual == expected)
    if op == "in":
        return bool(actual in expected)
    # Numbers travel as strings in some payloads (decimals): compare numerically when both parse.
    a, b = _coerce(actual), _coerce(expected)
    if type(a) is not type(b):
        return False
    try:
        return bool({"lt": a < b, "lte": a <= b, "gt": a > b, "gte": a >= b}[op])
    except TypeError:
        return False


def _coerce(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def conditions_hold(conditions: Mapping[str, Mapping[str, Any]], doc: Mapping[str, Any]) -> bool:
    """All conditions hold (AND). A missing path fails every operator except ``ne`` and ``exists: false``."""
    return all(_compare(op, resolve(doc, path), expected)
               for path, spec in conditions.items() for op, expected in spec.items())


def group_labels(group_by: list[str], doc: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path in group_by:
        value = resolve(doc, path)
        out[path] = None if value is _MISSING else value
    return out


def fingerprint(rule_id: str, labels: Mapping[str, Any]) -> str:
    raw = json.dumps([rule_id, labels], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def seconds(delta: float) -> dt.timedelta:
    return dt.timedelta(seconds=delta)
