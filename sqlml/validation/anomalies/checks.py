"""Custom checks of the schema, evaluated inside the validation scan.

A check that cannot bind to this batch (a column it uses is missing) is reported as
failing, unless every missing column it uses is one the schema does not expect in this
environment (a label check in serving).
"""

from __future__ import annotations

from sqlml.sqlutil import quote_ident
from sqlml.validation import checks as custom
from sqlml.validation.scan import Extra


def _runnable(run):
    """(check, error) for each check: error None when the check binds to this batch."""
    if run.check_binding is None:
        binding = []
        absent_elsewhere = {c.name for c in run.schema.columns.values() if not c.in_environment(run.environment)}
        present = {c.name for c in run.source.columns}
        for check in run.schema.checks.values():
            error = custom.bind_error(run.duck, [(c.name, c.data_type) for c in run.source.columns], check)
            if error:
                used = set(custom.referenced_columns(check.expression))
                missing = used - present
                if missing and missing <= absent_elsewhere:
                    continue  # uses only columns not expected in this environment
            binding.append((check, error))
        run.check_binding = binding
    return run.check_binding


def plan(run) -> list[Extra]:
    return [Extra(("check", check.name), custom.aggregate_sql(check)) for check, error in _runnable(run) if error is None]


def detect(run) -> list:
    found = []
    rows = run.stats.row_count
    for check, error in _runnable(run):
        scope = "row check" if check.scope == custom.ROW else "statistics check"
        if error is not None:
            found.append(run.anomaly(
                "CUSTOM_VALIDATION", None, f"{scope} {check.name!r} could not run on this data: {error}",
                observed="not evaluated", expected=check.expression,
            ))
            continue
        value = run.extras.get(("check", check.name))
        if check.scope == custom.ROW:
            if not value:
                continue
            found.append(run.anomaly(
                "CUSTOM_VALIDATION", _single_column(check), f"{scope} {check.name!r} failed on {value:,} of {rows:,} rows ({value / rows:.2%})",
                observed=f"{value:,} failing rows", expected=check.expression,
                examples=_failing_rows(run, check), metric=float(value), threshold=0.0,
            ))
        elif value is False:
            found.append(run.anomaly(
                "CUSTOM_VALIDATION", _single_column(check), f"{scope} {check.name!r} is false for this batch",
                observed="false", expected=check.expression, examples=_statistics_values(run, check),
            ))
    return found


def _single_column(check) -> str | None:
    used = custom.referenced_columns(check.expression)
    return used[0] if len(used) == 1 else None


def _failing_rows(run, check) -> tuple[str, ...]:
    used = [c for c in custom.referenced_columns(check.expression) if run.source.column(c) is not None]
    value = "struct_pack(" + ", ".join(f"{quote_ident(c)} := {quote_ident(c)}" for c in used) + ")" if used else "'(row)'"
    return run.examples(value, f"NOT ({check.expression})")


def _statistics_values(run, check) -> tuple[str, ...]:
    """The aggregates inside a statistics check, evaluated, to show why it failed."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(f"SELECT {check.expression}", read="duckdb")
    except sqlglot.errors.ParseError:
        return ()
    parts = [node.sql(dialect="duckdb") for node in tree.find_all(exp.AggFunc)][:3]
    if not parts:
        return ()
    try:
        values = run.duck.execute(f"SELECT {', '.join(parts)} FROM {run.source.sql} AS __src").fetchall()[0]
    except Exception:  # noqa: BLE001 - examples are a courtesy; the anomaly stands without them
        return ()
    return tuple(f"{p} = {v}" for p, v in zip(parts, values, strict=True))
