"""Value constraints: string domains, numeric bounds, NaN and infinities, list lengths, keys.

Domains and bounds carry a tolerated mass outside them (``min_domain_mass``,
``min_range_mass``); an anomaly needs significantly more outside values than that, so a
rare but legitimate value in a clean batch is not an error while a new category or a
unit change is. A mass of 1.0 makes the constraint strict (any value outside).
"""

from __future__ import annotations

from sqlml.sqlutil import quote_ident
from sqlml.validation import kinds
from sqlml.validation.scan import Extra, finite_value
from sqlml.validation.significance import count_exceeds


def plan(run) -> list[Extra]:
    extras = []
    for expected, actual in run.checked():
        q = quote_ident(actual.name)
        if actual.kind in kinds.NUMERIC:
            value = finite_value(run.source, actual.name)
            if expected.valid_min is not None:
                extras.append(Extra(("invalid_below", actual.name), f"count_if({value} < ?)", [expected.valid_min]))
            if expected.valid_max is not None:
                extras.append(Extra(("invalid_above", actual.name), f"count_if({value} > ?)", [expected.valid_max]))
            if expected.min_value is not None:
                extras.append(Extra(("below", actual.name), f"count_if({value} < ?)", [expected.min_value]))
            if expected.max_value is not None:
                extras.append(Extra(("above", actual.name), f"count_if({value} > ?)", [expected.max_value]))
        if actual.kind == kinds.LIST:
            if expected.min_length is not None:
                extras.append(Extra(("short", actual.name), f"count_if(len({q}) < ?)", [expected.min_length]))
            if expected.max_length is not None:
                extras.append(Extra(("long", actual.name), f"count_if(len({q}) > ?)", [expected.max_length]))
    return extras


def detect(run) -> list:
    found = []
    for expected, actual in run.checked():
        stats = run.stats.columns[actual.name]
        if expected.domain is not None and stats.count:
            found += _domain(run, expected, stats)
        if actual.kind in kinds.NUMERIC:
            found += _bounds(run, expected, stats)
            found += _non_finite(run, expected, stats)
        if actual.kind == kinds.LIST:
            found += _lengths(run, expected, stats)
        if expected.is_unique:
            found += _unique(run, expected, stats)
    return found


def _domain(run, expected, stats) -> list:
    domain = set(expected.domain)
    q = quote_ident(stats.name)
    text = f"CAST({q} AS VARCHAR)"
    outside_where = f"{q} IS NOT NULL AND NOT list_contains(?::VARCHAR[], {text})"
    if stats.values_exact:
        outside_values = {v: c for v, c in stats.values.items() if v not in domain}
        outside = sum(outside_values.values())
    else:
        outside = run.duck.execute(f"SELECT count(*) FROM {run.source.sql} AS __src WHERE {outside_where}", [sorted(domain)]).fetchall()[0][0]
        outside_values = None
    tolerated = 1.0 - (expected.min_domain_mass if expected.min_domain_mass is not None else 1.0)
    if not count_exceeds(outside, stats.count, tolerated, run.alpha):
        return []
    if outside_values is not None:
        top = sorted(outside_values.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
        examples = tuple(f"{v} ({c:,})" for v, c in top)
        distinct_outside = len(outside_values)
    else:
        examples = run.examples(text, outside_where, [sorted(domain)])
        distinct_outside = None
    share = outside / stats.count
    count_text = "values" if distinct_outside is None else f"{distinct_outside} new value{'s' if distinct_outside != 1 else ''}"
    return [run.anomaly(
        "ENUM_TYPE_UNEXPECTED_STRING_VALUES", stats.name,
        f"{count_text} outside the domain of {stats.name!r} in {outside:,} rows ({share:.2%})",
        observed=f"{share:.2%} of values outside the domain",
        expected=f"<= {tolerated:.2%} outside a domain of {len(domain)} values",
        examples=examples, metric=share, threshold=tolerated,
    )]


def _bounds(run, expected, stats) -> list:
    """Per side: values past the strict bound (any is an anomaly), else past the tolerant one
    (an anomaly when significantly more than the tolerated share)."""
    found = []
    tolerated = 1.0 - (expected.min_range_mass if expected.min_range_mass is not None else 1.0)
    is_int = expected.kind == kinds.INTEGER and stats.kind == kinds.INTEGER
    q = quote_ident(stats.name)
    finite = f"isfinite({q}) AND " if kinds.is_ieee_float(stats.data_type) else ""
    why = next((e["reason"] for e in expected.evidence or () if e["kind"] == "valid_range"), None)
    sides = (("below", expected.valid_min, expected.min_value, "<", "ascending"), ("above", expected.valid_max, expected.max_value, ">", "descending"))
    for side, valid, bound, op, order in sides:
        strict = run.extras.get((f"invalid_{side}", stats.name))
        n = run.extras.get((side, stats.name))
        if valid is not None and strict:
            n, bound, what, allowed = strict, valid, "valid", f"none outside [{_g(expected.valid_min, '-inf')}, {_g(expected.valid_max, 'inf')}]"
        elif bound is not None and n and count_exceeds(n, stats.count, tolerated, run.alpha):
            what, allowed = "", f"[{_g(expected.min_value, '-inf')}, {_g(expected.max_value, 'inf')}] with <= {tolerated:.3%} outside"
        else:
            continue
        anomaly_type = {("below", True): "INT_TYPE_SMALL_INT", ("above", True): "INT_TYPE_BIG_INT",
                        ("below", False): "FLOAT_TYPE_SMALL_FLOAT", ("above", False): "FLOAT_TYPE_BIG_FLOAT"}[(side, is_int)]
        share = n / stats.count
        edge = (f"the valid {'minimum' if side == 'below' else 'maximum'} {bound:g}" if what
                else f"{'the lower' if side == 'below' else 'the upper'} bound {bound:g}")
        description = f"{n:,} values of {stats.name!r} ({share:.2%}) are {side} {edge}"
        if what and why:
            description += f" ({why})"
        examples = run.examples(q, f"{finite}CAST({q} AS DOUBLE) {op} ?", [bound], order=order)
        found.append(run.anomaly(
            anomaly_type, stats.name, description,
            observed=f"{share:.2%} {side} {bound:g} (min {stats.min:g}, max {stats.max:g})", expected=allowed,
            examples=examples, metric=share, threshold=0.0 if what else tolerated,
        ))
    return found


def _non_finite(run, expected, stats) -> list:
    found = []
    if not expected.allow_nan and stats.nan:
        found.append(run.anomaly(
            "FLOAT_TYPE_HAS_NAN", stats.name, f"{stats.nan:,} NaN values in {stats.name!r}; the training data had none",
            observed=f"{stats.nan:,} NaN", expected="no NaN", metric=float(stats.nan), threshold=0.0,
        ))
    if not expected.allow_inf and stats.inf:
        found.append(run.anomaly(
            "FLOAT_TYPE_HAS_INF", stats.name,
            f"{stats.inf:,} infinite values in {stats.name!r} (+inf {stats.pos_inf:,}, -inf {stats.neg_inf:,})",
            observed=f"{stats.inf:,} infinite", expected="finite values", metric=float(stats.inf), threshold=0.0,
        ))
    return found


def _lengths(run, expected, stats) -> list:
    found = []
    q = quote_ident(stats.name)
    for key, bound, anomaly_type, op, word in (
        ("short", expected.min_length, "FEATURE_TYPE_LOW_NUMBER_VALUES", "<", "fewer"),
        ("long", expected.max_length, "FEATURE_TYPE_HIGH_NUMBER_VALUES", ">", "more"),
    ):
        n = run.extras.get((key, stats.name))
        if bound is None or not n:
            continue
        examples = run.examples(f"len({q})", f"len({q}) {op} ?", [bound])
        found.append(run.anomaly(
            anomaly_type, stats.name, f"{n:,} rows of {stats.name!r} have {word} than {bound} values",
            observed=f"lengths {stats.min_length}..{stats.max_length}",
            expected=f"lengths {_g(expected.min_length, '0')}..{_g(expected.max_length, 'any')}",
            examples=tuple(f"length {e}" for e in examples), metric=float(n), threshold=0.0,
        ))
    return found


def _unique(run, expected, stats) -> list:
    distinct = run.distinct.get(stats.name)
    if distinct is None or distinct >= stats.count:
        return []
    duplicates = stats.count - distinct
    q = quote_ident(stats.name)
    rows = run.duck.execute(
        f"SELECT CAST({q} AS VARCHAR), count(*) FROM {run.source.sql} AS __src WHERE {q} IS NOT NULL "
        f"GROUP BY {q} HAVING count(*) > 1 ORDER BY count(*) DESC, 1 LIMIT 5"
    ).fetchall()
    return [run.anomaly(
        "UNIQUENESS_VIOLATED", stats.name,
        f"{stats.name!r} should be unique but {duplicates:,} rows repeat an earlier value",
        observed=f"{distinct:,} distinct of {stats.count:,}", expected="all values distinct",
        examples=tuple(f"{v} ({n:,})" for v, n in rows), metric=float(duplicates), threshold=0.0,
    )]


def _g(x, missing: str) -> str:
    return missing if x is None else f"{x:g}"
