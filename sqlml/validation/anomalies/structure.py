"""Missing, new and retyped columns (and a hint when a column was only renamed)."""

from __future__ import annotations

from sqlml.sqlutil import quote_ident
from sqlml.validation import kinds
from sqlml.validation.scan import Extra

#: The type un-castable text is tried against, per expected kind (never a type from user text).
_CAST = {kinds.INTEGER: "BIGINT", kinds.FLOAT: "DOUBLE", kinds.BOOLEAN: "BOOLEAN", kinds.TEMPORAL: "TIMESTAMP"}


def _retyped(run):
    """(schema column, batch column) pairs whose kinds disagree."""
    from sqlml.validation.validate import compatible

    pairs = []
    for expected in run.expected_columns():
        actual = run.source.column(expected.name)
        if actual is not None and not compatible(expected.kind, actual.kind):
            pairs.append((expected, actual))
    return pairs


def plan(run) -> list[Extra]:
    extras = []
    for expected, actual in _retyped(run):
        target = _CAST.get(expected.kind)
        if actual.kind == kinds.STRING and target:
            q = quote_ident(actual.name)
            extras.append(Extra(("uncastable", actual.name), f"count_if({q} IS NOT NULL AND TRY_CAST({q} AS {target}) IS NULL)"))
    return extras


def detect(run) -> list:
    found = []
    expected_names = {c.name for c in run.expected_columns()}
    schema_names = set(run.schema.columns)
    new_columns = [c for c in run.source.columns if c.name not in schema_names]
    missing = [c for c in run.expected_columns() if run.source.column(c.name) is None]
    renamed = {m.name: _rename_candidates(run, m, new_columns) for m in missing}
    for column in missing:
        if column.min_fraction <= 0:
            continue  # optional: NULL-only in the training data, or relaxed by ACCEPT
        hint = renamed[column.name]
        found.append(run.anomaly(
            "SCHEMA_MISSING_COLUMN", column.name,
            f"column {column.name!r} ({column.data_type}) is missing" + (f"; renamed to {_names(hint)}?" if hint else ""),
            observed="absent", expected=f"present in at least {column.min_fraction:.2%} of rows",
        ))
    for column in new_columns:
        sources = [m for m, candidates in renamed.items() if column.name in candidates]
        found.append(run.anomaly(
            "SCHEMA_NEW_COLUMN", column.name,
            f"column {column.name!r} ({column.data_type}) is not in the schema" + (f"; renamed from {_names(sources)}?" if sources else ""),
            observed=column.data_type, expected="no such column",
        ))
    for expected, actual in _retyped(run):
        if expected.name not in expected_names:
            continue
        description = f"column {expected.name!r} is {actual.data_type}, the schema expects {expected.data_type}"
        examples: tuple[str, ...] = ()
        bad = run.extras.get(("uncastable", actual.name))
        if bad is not None:
            target = _CAST[expected.kind]
            present = run.stats.columns[actual.name].count
            description += f"; {bad:,} of {present:,} values are not {target}" if bad else f"; every value reads as {target}"
            if bad:
                q = quote_ident(actual.name)
                examples = run.examples(q, f"{q} IS NOT NULL AND TRY_CAST({q} AS {target}) IS NULL")
        found.append(run.anomaly(
            "UNEXPECTED_DATA_TYPE", expected.name, description,
            observed=actual.data_type, expected=expected.data_type, examples=examples,
        ))
    return found


def _rename_candidates(run, missing, new_columns) -> list[str]:
    """New columns of a compatible kind whose values satisfy the missing column's constraints."""
    from sqlml.validation.validate import compatible

    found = []
    for column in new_columns:
        if not compatible(missing.kind, column.kind):
            continue
        stats = run.stats.columns.get(column.name) if run.stats else None
        if stats is None or stats.count == 0:
            continue
        if missing.domain is not None and stats.values:
            inside = sum(c for v, c in stats.values.items() if v in set(missing.domain))
            if inside < 0.9 * sum(stats.values.values()):
                continue
        if missing.min_value is not None and stats.min is not None and stats.min < missing.min_value:
            continue
        if missing.max_value is not None and stats.max is not None and stats.max > missing.max_value:
            continue
        found.append(column.name)
    return found


def _names(names) -> str:
    return " or ".join(repr(n) for n in names)
