"""Property-based tests of the health model (Hypothesis, random inputs): the rule for unknown components
and the monotonicity it guarantees (docs/health.md proves them)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from services.metrics.health.scoring import (
    COMPONENTS,
    DEFAULT_BANDS,
    DEFAULT_THRESHOLDS,
    DEFAULT_WEIGHTS,
    Component,
    Inputs,
    band_of,
    combine,
    components,
)

pytestmark = pytest.mark.db_independent

EPS = 1e-9
value = st.floats(min_value=0, max_value=100, allow_nan=False)
maybe_value = st.one_of(st.none(), value)
# Zero or a weight an operator would type (subnormal weights like 5e-324 make the oracle's own sums inexact).
weight = st.one_of(st.just(0.0), st.floats(min_value=1e-3, max_value=1000, allow_nan=False))
weights_st = st.fixed_dictionaries({n: weight for n in COMPONENTS}
                                   ).filter(lambda w: sum(w.values()) > 0)
values_st = st.fixed_dictionaries({n: maybe_value for n in COMPONENTS})
neutral = st.floats(min_value=0, max_value=100, allow_nan=False)


def score(values: dict[str, float | None], weights: dict[str, float], p: float) -> float | None:
    parts = [Component(n, values[n], {}, "") for n in COMPONENTS]
    return combine(parts, weights, DEFAULT_BANDS, unknown_value=p).score


def known_mean(values: dict[str, float | None], weights: dict[str, float]) -> float | None:
    known = [(weights[n], v) for n, v in values.items() if v is not None and weights[n] > 0]
    total = sum(w for w, _ in known)
    return sum(w * v for w, v in known) / total if total else None


@settings(max_examples=200, deadline=None)
@given(values_st, weights_st, neutral, st.sampled_from(COMPONENTS), st.floats(min_value=0, max_value=1))
def test_lowering_a_known_value_never_raises_the_score(values: dict[str, float | None], weights: dict[str, float],
                                                       p: float, name: str, factor: float) -> None:
    assume(values[name] is not None)
    before = score(values, weights, p)
    after = score({**values, name: values[name] * factor}, weights, p)  # type: ignore[operator]
    if before is None:  # only weightless data
        assert after is None
        return
    assert after is not None and after <= before + EPS


@settings(max_examples=200, deadline=None)
@given(values_st, weights_st, neutral, st.sampled_from(COMPONENTS), st.floats(min_value=0, max_value=1))
def test_adding_a_value_at_or_below_min_of_score_and_neutral_never_raises_it(
        values: dict[str, float | None], weights: dict[str, float], p: float, name: str, fraction: float) -> None:
    values = {**values, name: None}  # made missing rather than filtered for: Hypothesis gives up on heavy filters
    before = score(values, weights, p)
    assume(before is not None)
    assert before is not None
    added = fraction * min(before, p)
    after = score({**values, name: added}, weights, p)
    assert after is not None and after <= before + EPS


@settings(max_examples=200, deadline=None)
@given(values_st, weights_st, st.sampled_from(COMPONENTS), st.floats(min_value=0, max_value=1))
def test_on_a_yellow_or_red_account_adding_any_value_at_or_below_the_score_never_raises_it(
        values: dict[str, float | None], weights: dict[str, float], name: str, fraction: float) -> None:
    # With the default neutral value (50), every account at or below it: "a bad signal" is any value <= score.
    values = {**values, name: None}
    before = score(values, weights, 50)
    assume(before is not None and before <= 50)
    assert before is not None
    after = score({**values, name: fraction * before}, weights, 50)
    assert after is not None and after <= before + EPS


@settings(max_examples=200, deadline=None)
@given(values_st, weights_st, neutral)
def test_missing_data_never_flatters(values: dict[str, float | None], weights: dict[str, float], p: float) -> None:
    s = score(values, weights, p)
    m = known_mean(values, weights)
    if m is None:
        assert s is None
        return
    assert s is not None and 0 <= s <= 100
    # Never above what the known data says, nor above counting every unknown as neutral.
    assert s <= round(m, 1) + EPS
    neutral_fill = sum(weights[n] * (v if v is not None else p) for n, v in values.items()) / sum(weights.values())
    assert s <= round(neutral_fill, 1) + EPS
    # And at least as high as counting every unknown as 0: an unknown is never worse than the worst value.
    zero_fill = sum(weights[n] * (v or 0.0) for n, v in values.items()) / sum(weights.values())
    assert s >= round(zero_fill, 1) - EPS


@settings(max_examples=150, deadline=None)
@given(st.fixed_dictionaries({n: value for n in COMPONENTS}), weights_st, neutral)
def test_a_fully_known_account_scores_its_weighted_mean(values: dict[str, float], weights: dict[str, float],
                                                        p: float) -> None:
    expected = sum(weights[n] * v for n, v in values.items()) / sum(weights.values())
    out = combine([Component(n, values[n], {}, "") for n in COMPONENTS], weights, DEFAULT_BANDS, unknown_value=p,
                  min_coverage=1.0)
    # The weighted mean to one decimal; summed in another order, a mean on a rounding boundary (0.95 vs
    # 0.9500000000000001) may round either way.
    assert out.score is not None and abs(out.score - expected) <= 0.05 + EPS and out.coverage == 1.0
    assert out.band == band_of(out.score, DEFAULT_BANDS)


@settings(max_examples=150, deadline=None)
@given(values_st, weights_st, neutral, st.floats(min_value=0, max_value=1))
def test_contributions_add_up_and_the_band_waits_for_coverage(values: dict[str, float | None],
                                                              weights: dict[str, float], p: float,
                                                              min_coverage: float) -> None:
    out = combine([Component(n, values[n], {}, "") for n in COMPONENTS], weights, DEFAULT_BANDS, unknown_value=p,
                  min_coverage=min_coverage)
    if out.score is None:
        assert out.band is None and out.band_reason == "no component has data yet"
        return
    assert abs(sum(c["contribution"] for c in out.components) - out.score) <= 0.05 + 0.005 * len(COMPONENTS)
    if out.coverage < min_coverage:
        assert out.band is None and out.band_reason and "METRICS_HEALTH_MIN_COVERAGE" in out.band_reason
    else:
        assert out.band == band_of(out.score, DEFAULT_BANDS) and out.band_reason is None


# The whole pipeline, from what the scorer reads: a bad signal never raises the score.

NOW = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)
hours_ago = st.floats(min_value=0, max_value=24 * 400).map(lambda h: NOW - dt.timedelta(hours=h))


@st.composite
def inputs_st(draw: st.DrawFn) -> Inputs:
    tickets = draw(st.lists(st.tuples(hours_ago, st.one_of(st.none(), st.floats(min_value=0, max_value=200)),
                                      st.booleans()), max_size=4))
    return Inputs(
        now=NOW,
        seats=draw(st.one_of(st.none(), st.integers(min_value=1, max_value=500))),
        renewal_date=draw(st.one_of(st.none(), st.integers(min_value=-60, max_value=800).map(
            lambda d: NOW.date() + dt.timedelta(days=d)))),
        last_touchpoint_at=draw(st.one_of(st.none(), hours_ago)),
        account_since=draw(st.one_of(st.none(), hours_ago)),
        has_usage=draw(st.booleans()),
        active_users_30d=draw(st.integers(min_value=0, max_value=500)),
        events_recent_14d=draw(st.floats(min_value=0, max_value=1e6)),
        events_prior_14d=draw(st.floats(min_value=0, max_value=1e6)),
        nps_scores=draw(st.lists(st.integers(min_value=0, max_value=10), max_size=5)),
        csat_scores=draw(st.lists(st.integers(min_value=1, max_value=5), max_size=5)),
        tickets=[(o, None if r is None else o + dt.timedelta(hours=r), o if resolved else None)
                 for o, r, resolved in tickets],
        commitments=draw(st.lists(st.tuples(
            st.sampled_from(["open", "in_progress", "delivered", "waived", "at_risk"]),
            st.one_of(st.none(), st.integers(min_value=-100, max_value=100).map(
                lambda d: NOW.date() + dt.timedelta(days=d))),
            st.one_of(st.none(), hours_ago)), max_size=4)),
    )


def pipeline(i: Inputs) -> float | None:
    t = DEFAULT_THRESHOLDS
    return combine(components(i, t), DEFAULT_WEIGHTS, DEFAULT_BANDS, unknown_value=t.unknown_value).score


BAD_SIGNALS = {
    "a detractor": lambda i, d: i.nps_scores.append(d.draw(st.integers(min_value=0, max_value=6))),
    "an unhappy CSAT": lambda i, d: i.csat_scores.append(d.draw(st.integers(min_value=1, max_value=3))),
    "a ticket opened and still open": lambda i, d: i.tickets.append((d.draw(hours_ago), None, None)),
    "a slow ticket": lambda i, d: i.tickets.append(
        (NOW - dt.timedelta(hours=30), NOW - dt.timedelta(hours=2), NOW - dt.timedelta(hours=1))),
    "an overdue promise": lambda i, d: i.commitments.append(("open", NOW.date() - dt.timedelta(days=3), None)),
    "a late delivery": lambda i, d: i.commitments.append(
        ("delivered", NOW.date() - dt.timedelta(days=10), NOW - dt.timedelta(days=1))),
    "fewer active users": lambda i, d: setattr(i, "active_users_30d", d.draw(st.integers(0, i.active_users_30d))),
    "fewer recent events": lambda i, d: setattr(i, "events_recent_14d", i.events_recent_14d * d.draw(
        st.floats(min_value=0, max_value=1))),
    "an earlier renewal": lambda i, d: setattr(i, "renewal_date", None if i.renewal_date is None else
                                               i.renewal_date - dt.timedelta(days=d.draw(st.integers(0, 400)))),
    "an older last touchpoint": lambda i, d: setattr(i, "last_touchpoint_at", None if i.last_touchpoint_at is None
                                                     else i.last_touchpoint_at - dt.timedelta(days=d.draw(
                                                         st.integers(0, 400)))),
}


@settings(max_examples=400, deadline=None)
@given(inputs_st(), st.sampled_from(sorted(BAD_SIGNALS)), st.data())
def test_a_bad_signal_never_raises_the_score(i: Inputs, signal: str, data: st.DataObject) -> None:
    before = pipeline(i)
    BAD_SIGNALS[signal](i, data)
    after = pipeline(i)
    if before is None:
        return
    assert after is not None and after <= before + EPS, signal


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=180, max_value=3000), st.floats(min_value=0, max_value=1))
def test_a_new_account_with_no_data_and_a_distant_renewal_is_not_100_green(days: int, min_coverage: float) -> None:
    i = Inputs(now=NOW, renewal_date=NOW.date() + dt.timedelta(days=days))
    out = combine(components(i), DEFAULT_WEIGHTS, DEFAULT_BANDS, unknown_value=50, min_coverage=0.5)
    # renewal 100 and support 100 (no trouble) are all that is known: 25% of the weight
    assert out.coverage == 0.25 and out.band is None and "25%" in (out.band_reason or "")
    assert out.score == 62.5  # 0.25 * 100 + 0.75 * 50: pulled to neutral, not 100
    anyway = combine(components(i), DEFAULT_WEIGHTS, DEFAULT_BANDS, unknown_value=50, min_coverage=min_coverage)
    assert anyway.band != "green"  # whatever the coverage setting
