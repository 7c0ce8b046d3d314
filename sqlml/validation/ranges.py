"""Strict ranges a person reads off training data: calendar units, integer codes, signs, [0, 1].

A strict range (``valid_min`` / ``valid_max``) makes one value outside an anomaly, like
TFDV's int_domain and float_domain bounds. So each side is closed only where values
beyond it would already have shown up in the training data, were they possible:

* **calendar units**: an integer column named like a unit (``month``, ``dep_hour``,
  ``day_of_week``, ...) whose values all lie in the unit's range gets the whole range:
  month 6..7 from a summer still means 1..12, day 1..28 from February means 1..31;
* **integer codes**: at most ``MAX_CODE_VALUES`` distinct integers covering at least half
  of their range. A side closes where its edge is *sharp*: were the counts to go on past
  the edge with the trend of the last two values (count(edge)^2 / count(next)), at least
  ``SHARP`` values would be expected beyond it, and none was seen. A flag's 0 and 1 or a
  code 1..5 close; a Poisson count's thinning top (13 seen 13 times, 12 seen 55) does not;
* **signs**: a column never negative closes at 0 (integers never below 1 at 1) when the
  values either stop short of 0 with a gap that the density of the lowest values says
  should hold ``SHARP`` of them (distance: min 17), or are dense right down to the floor
  (as many zeros as a 1% tail, or as dense near 0 as in the middle);
* **the unit interval**: floats in [0, 1] spanning at least half of it, with that
  evidence at both ends.

Columns named like a year or a date number are time axes: their next values are new by
nature, so they never close. The sharpness test puts the chance that a distribution going
on past an edge left no value beyond it at exp(-SHARP) = 5e-5.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from sqlml.validation import kinds
from sqlml.validation.sketch import integer_in_bucket, representative
from sqlml.validation.statistics import ColumnStats

SHARP = 10.0
#: More distinct integers than this read as a quantity (qty 0..49), not a code.
MAX_CODE_VALUES = 20
MIN_COVERAGE = 0.5
#: Codes, signs and the unit interval need this many values; calendar units need a name.
MIN_ROWS = 100
#: Density near a floor, relative to the middle's, that makes it a floor rather than a tail.
DENSE = 0.2
#: Sketch buckets hold at most one integer below this magnitude (1 / (gamma - 1) = 99.5).
_ONE_INTEGER_PER_BUCKET = 99

#: unit -> (low, high, name tokens, follows the time span): a span unit's distribution is set by
#: which dates a batch covers (July's batch is all month 7), so it is not compared for drift;
#: time of day is (a batch of only morning flights has drifted).
CALENDAR = {
    "month": (1, 12, {"month", "mon"}, True),
    "day of month": (1, 31, {"day", "dom", "mday", "dayofmonth"}, True),
    "hour": (0, 23, {"hour", "hr"}, False),
    "minute": (0, 59, {"minute", "minutes"}, False),
    "second": (0, 60, {"second", "seconds", "sec"}, False),  # 60: a leap second
    "weekday": (0, 7, {"weekday", "dow", "wday", "dayofweek", "isodow"}, True),
    "quarter": (1, 4, {"quarter", "qtr"}, True),
    "week": (1, 53, {"week", "isoweek", "weekofyear"}, True),
    "day of year": (1, 366, {"doy", "yday", "dayofyear"}, True),
}
_TIME_AXES = {"year", "yr", "epoch", "timestamp", "ts", "date"}
_TWO_WORD = {("day", "of", "week"): "dayofweek", ("day", "of", "month"): "dayofmonth", ("day", "of", "year"): "dayofyear",
             ("week", "of", "year"): "weekofyear"}


@dataclass
class Closure:
    """A strict range (a side may stay open) and why."""

    low: float | None
    high: float | None
    reason: str
    time_span: bool = False  # a calendar unit set by the dates a batch covers

    def rule(self, name: str) -> str:
        if self.low is not None and self.high is not None:
            return f"{self.low:g} <= {name} <= {self.high:g}"
        if self.low is not None:
            return f"{name} >= {self.low:g}"
        return f"{name} <= {self.high:g}"


def closure(col: ColumnStats) -> Closure | None:
    """The strict range the training statistics of a numeric column justify, if any."""
    if col.kind not in kinds.NUMERIC or not col.finite or col.min is None:
        return None
    tokens = _tokens(col.name)
    if col.kind == kinds.INTEGER:
        calendar = _calendar(col, tokens)
        if calendar is not None:
            return calendar
    if tokens & _TIME_AXES or col.finite < MIN_ROWS or col.min == col.max:
        return None
    low = high = None
    reasons = []
    counts = integer_counts(col) if col.kind == kinds.INTEGER else None
    if counts is not None:
        low, high, text = _code(counts, col.finite)
        if text:
            reasons.append(text)
    if low is None and col.min >= 0:
        floor = _edge(col, 0.0, low_side=True)
        if floor:
            low = 1.0 if col.kind == kinds.INTEGER and col.min >= 1 else 0.0
            reasons.append(f"never {'below 1' if low == 1 else 'negative'} in {col.finite:,} values: {floor}")
    if col.kind == kinds.FLOAT and low == 0.0 and high is None and col.max <= 1 and col.max - col.min >= 0.5:
        ceiling = _edge(col, 1.0, low_side=False)
        if ceiling:
            high = 1.0
            reasons.append(f"never above 1 (a share or probability): {ceiling}")
    if low is None and high is None:
        return None
    return Closure(low, high, "; ".join(reasons))


def confidence(rows: int) -> float:
    """The least share of values satisfying a constraint that ``rows`` values with no
    exception leave plausible (95% one-sided; about 1 - 3/rows, the rule of three)."""
    return 0.05 ** (1.0 / rows) if rows > 0 else 0.0


def _tokens(name: str) -> set[str]:
    """``dep_hour`` -> {dep, hour}; ``dayOfWeek`` -> {day, of, week, dayofweek}."""
    words = [w.lower() for w in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", name)]
    tokens = set(words) | {"".join(words)}
    for i in range(len(words) - 2):
        joined = _TWO_WORD.get(tuple(words[i : i + 3]))
        if joined:
            tokens.add(joined)
    return tokens


def follows_time_span(col: ColumnStats) -> bool:
    """A year-like axis, or a calendar unit set by the dates a batch covers (month, day of
    month, week...): its distribution says which dates a batch holds, not whether it drifted."""
    tokens = _tokens(col.name)
    if tokens & _TIME_AXES:
        return True
    found = _calendar(col, tokens) if col.kind == kinds.INTEGER and col.finite else None
    return found is not None and found.time_span


def _calendar(col: ColumnStats, tokens: set[str]) -> Closure | None:
    for unit, (low, high, names, span) in CALENDAR.items():
        if not tokens & names or col.min < low or col.max > high:
            continue
        if unit == "weekday":  # 0..6 (Sunday 0) or 1..7 (ISO); 7 and 0 both seen: 0..7
            low, high = (0, 6) if col.max <= 6 and col.min == 0 else (1, 7) if col.min >= 1 else (0, 7)
        if col.min == col.max:
            seen = f"the value {col.min:g} in {col.finite:,} rows fits it"
        else:
            distinct = f"{int(col.distinct)} distinct integers" if col.distinct and col.distinct_exact else "integers"
            seen = f"{distinct} {col.min:g}..{col.max:g} in {col.finite:,} rows fit it"
        return Closure(float(low), float(high), f"named like a calendar unit ({unit}), and {seen}", time_span=span)
    return None


def integer_counts(col: ColumnStats) -> dict[int, int] | None:
    """Exact count per value of an integer column: from its value counts, or from its sketch
    when every bucket holds at most one integer; None when neither is exact."""
    if col.values_exact and col.values:
        return {int(float(v)): c for v, c in col.values.items()}
    if col.sketch.counts and max(abs(col.min), abs(col.max)) <= _ONE_INTEGER_PER_BUCKET:
        return {int(integer_in_bucket(k, representative(k), col.min, col.max)): c for k, c in col.sketch.counts.items()}
    return None


def _code(counts: dict[int, int], rows: int) -> tuple[float | None, float | None, str]:
    values = sorted(counts)
    distinct = len(values)
    if distinct < 2 or distinct > MAX_CODE_VALUES:
        return None, None, ""
    span = values[-1] - values[0] + 1
    if distinct / span < MIN_COVERAGE:
        return None, None, ""
    low = float(values[0]) if _sharp(counts[values[0]], counts[values[1]]) else None
    high = float(values[-1]) if _sharp(counts[values[-1]], counts[values[-2]]) else None
    if low is None and high is None:
        return None, None, ""
    edges = " and ".join(f"{v:g} seen {counts[int(v)]:,} times" for v in (low, high) if v is not None)
    return low, high, (
        f"{distinct} distinct integers {values[0]}..{values[-1]} in {rows:,} rows; the edge is sharp ({edges}, none beyond)"
        if (low is None) != (high is None) else
        f"{distinct} distinct integers {values[0]}..{values[-1]} in {rows:,} rows; both edges are sharp ({edges}, none beyond)"
    )


def _sharp(edge: int, inner: int) -> bool:
    return inner > 0 and edge * edge / inner >= SHARP


def _edge(col: ColumnStats, boundary: float, *, low_side: bool) -> str:
    """Why no value lies beyond ``boundary`` (below it on the low side), or '' without evidence."""
    n = col.finite
    tail = max(0.01, 10.0 / n)  # the extreme 1% of values, and at least 10 of them
    extreme = col.min if low_side else col.max
    inner = col.quantile(tail if low_side else 1.0 - tail)
    q25, q75 = col.quantile(0.25), col.quantile(0.75)
    if inner is None or q25 is None or q75 is None:
        return ""
    gap, width = abs(extreme - boundary), abs(inner - extreme)
    if width == 0:
        return f"over {tail:.0%} of them equal {extreme:g}"
    expected = tail * n * gap / width
    if expected >= SHARP:
        side = "below" if low_side else "above"
        return f"none {side} {extreme:g}, where the density of the {tail:.0%} {'lowest' if low_side else 'highest'} values predicts {_count(expected)}"
    middle = (q75 - q25) / 0.5
    if gap <= width and middle > 0 and (middle / width) * tail >= DENSE:
        return f"dense up to {extreme:g}"
    return ""


def _count(x: float) -> str:
    return f"{x:,.0f}" if math.isfinite(x) else "many"
