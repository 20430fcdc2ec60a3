"""Usage-event workloads for the bench, built once and pre-serialised (neither side pays for building).

Three shapes (each event unique by ``source`` + ``id``, keyed by its account as producers key them):

- ``realistic``: a day of product usage. About 200 accounts of about 20 users each; accounts and, within an
  account, users are Zipf-skewed (a few users do most of the work), so each active user sends many events a
  day; 2 % of the events arrive late (up to 3 days before the day).
- ``unique``: the same, but every event has a user never seen before: the worst case for the active-user
  set (the shape ``make bench`` measured before issue #14).
- ``import``: history as ``sim/`` sends it when a book is loaded: account by account, day by day over 400
  days, one event per active user per day (user k active with probability 0.9/(k+1)); 100 % late.

Each workload keeps its rows ``(source, id, account_id, type, user_id, feature, quantity, epoch_us, day)``
for the database floor and the checks, and the messages ``(key, value)`` as they go on the topic.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import msgspec

SOURCE = "/bench"
TYPES = ("usage.login", "usage.feature_used", "usage.feature_used", "usage.report_run")
FEATURES = ("reports", "export", "api", "dashboards", "alerts", "search", "billing", "admin")
EPOCH = dt.date(1970, 1, 1)

Row = tuple[str, str, str, str, str, "str | None", float, int, dt.date]


@dataclass(frozen=True)
class Workload:
    """A workload: its rows (for floors and checks) and its messages, pre-serialised."""

    name: str
    description: str
    rows: list[Row]
    messages: list[tuple[bytes, bytes]]  # (key, value) as produced: key = the account id

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def days(self) -> int:
        return len({r[8] for r in self.rows})

    @property
    def accounts(self) -> int:
        return len({r[2] for r in self.rows})

    @property
    def users(self) -> int:
        return len({(r[2], r[4]) for r in self.rows})

    def summary(self) -> str:
        last = max(r[8] for r in self.rows)
        late = len(self) if self.name == "import" else sum(1 for r in self.rows if r[8] < last)
        return (f"{self.name}: {len(self):,} events, {self.accounts} accounts, {self.users:,} users, "
                f"{self.days} days, {late / max(1, len(self)):.0%} late")


def _iso(epoch_us: int) -> str:
    return (dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=epoch_us)).isoformat().replace(
        "+00:00", "Z")


_encode = msgspec.json.Encoder().encode


def serialise(rows: Sequence[Row]) -> list[tuple[bytes, bytes]]:
    """The CloudEvents (structured mode, JSON) of the rows, keyed by account."""
    out = []
    for source, id_, account, etype, user, feature, quantity, epoch_us, _ in rows:
        data: dict[str, object] = {"user_id": user, "quantity": quantity}
        if feature is not None:
            data["feature"] = feature
        value = _encode({"specversion": "1.0", "id": id_, "source": source, "type": etype, "subject": account,
                         "time": _iso(epoch_us), "datacontenttype": "application/json", "data": data})
        out.append((account.encode(), value))
    return out


def _zipf(n: int, s: float) -> list[float]:
    weights = [1 / (k + 1) ** s for k in range(n)]
    return list(itertools.accumulate(weights))


def _day_start(day: dt.date) -> int:
    return (day - EPOCH).days * 86_400_000_000


def _yesterday() -> dt.date:
    # Yesterday (UTC): inside the time bounds metrics accepts (at most 1 day ahead, 3 years old).
    return dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)


def realistic(n: int, *, seed: int = 1, accounts: int = 200, users_per_account: int = 20, late: float = 0.02,
              unique_users: bool = False, day: dt.date | None = None, tag: str = "r") -> Workload:
    """A day of usage from ``accounts`` accounts, Zipf-skewed accounts and users, ``late`` of it late."""
    rng = random.Random(seed)
    day = day or _yesterday()
    start = _day_start(day)
    account_cum = _zipf(accounts, 0.6)
    user_cum = _zipf(users_per_account, 1.1)
    account_ids = [f"acct-{a:04d}" for a in range(accounts)]
    rows: list[Row] = []
    for i in range(n):
        a = rng.choices(range(accounts), cum_weights=account_cum)[0]
        u = rng.choices(range(users_per_account), cum_weights=user_cum)[0]
        user = f"user-{tag}{seed}-{i}" if unique_users else f"user-{a:04d}-{u:02d}"
        at = start + 86_400_000_000 * i // n
        if rng.random() < late:
            at = start - rng.randrange(3 * 86_400_000_000)
        etype = rng.choice(TYPES)
        feature = rng.choice(FEATURES) if etype != "usage.login" else None
        quantity = float(rng.choice((1, 1, 1, 2, 3)))
        rows.append((SOURCE, f"{tag}{seed}-{i}", account_ids[a], etype, user, feature, quantity, at,
                     EPOCH + dt.timedelta(microseconds=at)))
    name = "unique" if unique_users else "realistic"
    what = ("every event from a user never seen before (worst case for the active-user set)" if unique_users
            else f"{accounts} accounts x {users_per_account} users, Zipf-skewed, {late:.0%} late")
    return Workload(name, what, rows, serialise(rows))


def unique(n: int, *, seed: int = 1, accounts: int = 200) -> Workload:
    return realistic(n, seed=seed, accounts=accounts, unique_users=True, tag="u")


def history(n: int, *, seed: int = 1, days: int = 400, users_per_account: int = 20,
            until: dt.date | None = None) -> Workload:
    """An import as ``sim/`` sends it: account by account, day by day over ``days`` days before ``until``."""
    rng = random.Random(seed)
    until = until or _yesterday() - dt.timedelta(days=1)
    first = until - dt.timedelta(days=days - 1)
    probs = [0.9 / (k + 1) for k in range(users_per_account)]
    rows: list[Row] = []
    for a in itertools.count():
        account = f"hist-{a:04d}"
        for d in range(days):
            day = first + dt.timedelta(days=d)
            base = _day_start(day) + 12 * 3_600_000_000
            for k, p in enumerate(probs):
                if rng.random() < p:
                    feature = FEATURES[min(len(FEATURES) - 1, int(rng.expovariate(0.6)))]
                    rows.append((SOURCE, f"h{seed}-{account}/{day}/{k}", account, "usage.feature_used",
                                 f"user-{a:04d}-{k:02d}", feature, float(1 + int(rng.expovariate(1 / 6))),
                                 base + k, day))
                    if len(rows) == n:
                        return Workload("import", f"{a + 1} accounts x {days} days, account by account, 100% late",
                                        rows, serialise(rows))
    raise AssertionError("unreachable")


WORKLOADS: dict[str, Callable[..., Workload]] = {"realistic": realistic, "unique": unique, "import": history}


def build(name: str, n: int, *, seed: int = 1) -> Workload:
    return WORKLOADS[name](n, seed=seed)
