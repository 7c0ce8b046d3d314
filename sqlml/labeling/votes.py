"""APPLY LABELING FUNCTIONS: materialise votes, incrementally.

Layout: ``sqlml.votes_<h>(<key>, lf, label)``, one row per non-abstain vote (sparse: it
grows with coverage, not rows x LFs; every analysis is a GROUP BY over it, the label
model's sufficient statistics a GROUP BY of its vote patterns), and
``sqlml.rows_<h>(<key>)``, the rows already labeled.

Incremental: an LF whose fingerprint changed (new, replaced, classes changed) is
re-evaluated over all rows; the others only over rows whose key is not yet in
``rows_<h>``; rows deleted from the table lose their votes. Each group of LFs is
evaluated in one scan of the table (SQL LFs as expressions, Python LFs as Arrow UDFs
in the same SELECT), unpivoted to (key, lf, label) and appended.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb

from sqlml import progress
from sqlml.errors import DataError, LabelingError
from sqlml.labeling import store
from sqlml.labeling.lf import source_columns
from sqlml.labeling.store import LabelSet, LFRow
from sqlml.sqlutil import fetch_one, fetch_value, quote_ident, quote_literal

if TYPE_CHECKING:  # pyarrow (~35 MB of RSS) loads only when a table has Python LFs
    from sqlml.labeling.python_lf import PythonLFBatch

_UNDECLARED = "[sqlml-undeclared-class]"
_SEP = "\x1f"


@dataclass
class LFReport:
    name: str
    status: str  # 'new' | 'changed' | 'unchanged'
    rows_evaluated: int = 0
    votes: int = 0
    faults: int = 0


def drop_votes_of(duck, lf: LFRow) -> None:
    label_set = store.get_label_set(duck, lf.table)
    if label_set is not None and label_set.key is not None:
        duck.execute(f"DELETE FROM {label_set.votes_sql} WHERE lf = ?", [lf.lf_id])


def resolve_key(duck, label_set: LabelSet, columns: dict, key: str | None) -> tuple[str, str]:
    """The key column: as given, as remembered, the table's primary key, or an error."""
    if key is None:
        key = label_set.key
    if key is None:
        key = _primary_key(duck, label_set.parts)
    if key is None:
        raise DataError(
            f"table {label_set.table!r} needs a key column to keep votes by row: "
            f"APPLY LABELING FUNCTIONS ON {label_set.table} KEY <column> (a unique, non-NULL column).",
            obj=label_set.table,
        )
    found = columns.get(key.lower())
    if found is None:
        raise DataError(
            f"table {label_set.table!r} has no key column {key!r} (it has {', '.join(c for c, _ in columns.values())}).",
            obj=label_set.table, column=key,
        )
    return found


def _primary_key(duck, parts: list[str]) -> str | None:
    schema, name = (parts[0].lower(), parts[-1].lower()) if len(parts) > 1 else ("main", parts[0].lower())
    row = fetch_one(
        duck,
        "SELECT constraint_column_names FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY' "
        "AND lower(table_name) = ? AND lower(schema_name) = ?",
        [name, schema],
    )
    if row is None or len(row[0]) != 1:
        return None
    return row[0][0]


def apply(connection, table: str, key: str | None = None, *, full: bool = False) -> list[LFReport]:
    """Bring the votes of ``table`` up to date; one report per labeling function."""
    duck = connection.duckdb
    label_set = store.require_label_set(duck, table)
    lfs = store.lfs_of(duck, table)
    if not lfs:
        raise LabelingError(f"table {table!r} has no labeling functions; create one with CREATE LABELING FUNCTION.")
    columns = source_columns(duck, label_set.parts)
    key_name, key_type = resolve_key(duck, label_set, columns, key)
    if label_set.key is not None and (label_set.key.lower() != key_name.lower() or label_set.key_type != key_type):
        store.drop_label_set(duck, label_set)  # re-keyed: start over with the same classes
        label_set = store.create_label_set(duck, table, label_set.parts, label_set.classes)
        full = True
    if label_set.key is None:
        store.set_key(duck, label_set, key_name, key_type)
        full = True
    src, k_col = label_set.source_sql, label_set.key_sql
    if full:
        duck.execute(f"DELETE FROM {label_set.votes_sql}")
        duck.execute(f"DELETE FROM {label_set.rows_sql}")
    stale = [lf for lf in lfs if full or lf.stale]
    current = [lf for lf in lfs if lf not in stale]
    reports = {lf.name: LFReport(lf.name, "new" if lf.applied_fingerprint is None else
                                 ("changed" if lf in stale else "unchanged")) for lf in lfs}
    if full:
        for lf in stale:
            reports[lf.name].status = "new" if lf.applied_fingerprint is None else "recomputed"
    new_filter = f"NOT EXISTS (SELECT 1 FROM {label_set.rows_sql} AS r WHERE r.{k_col} = {src}.{k_col})"
    n_new = sync_rows(duck, label_set, full)
    if not stale and not n_new:
        return _finish(duck, label_set, lfs, reports, stale, {})
    n_all = n_new if full else int(fetch_value(duck, f"SELECT count(*) FROM {src}"))
    if stale and not full:
        duck.execute(f"DELETE FROM {label_set.votes_sql} WHERE lf IN ({', '.join(str(lf.lf_id) for lf in stale)})")
    runners: dict[int, PythonLFBatch] = {}
    try:
        if stale:
            _scan(connection, label_set, stale, columns, None, n_all, reports, runners)
        if current and n_new:
            _scan(connection, label_set, current, columns, new_filter, n_new, reports, runners)
    finally:
        for batch in runners.values():
            batch.unregister(duck)
    if n_new:
        where = "" if full else f" WHERE {new_filter}"
        duck.execute(f"INSERT INTO {label_set.rows_sql} SELECT {k_col} FROM {src}{where}")
    return _finish(duck, label_set, lfs, reports, stale, runners)


def _finish(duck, label_set, lfs, reports, stale, batches) -> list[LFReport]:
    runners = {r.lf.name: r for batch in batches.values() for r in batch.runners}
    counts = dict(duck.execute(f"SELECT lf, count(*) FROM {label_set.votes_sql} GROUP BY lf").fetchall())
    applied = {}
    for lf in lfs:
        report = reports[lf.name]
        report.votes = int(counts.get(lf.lf_id, 0))
        runner = runners.get(lf.name)
        if runner is not None:
            report.faults = runner.faults
        if lf in stale:
            applied[lf.name] = report.faults
        elif runner is not None:
            applied[lf.name] = lf.faults + report.faults
    store.mark_applied(duck, applied)
    return list(reports.values())


def sync_rows(duck, label_set: LabelSet, full: bool) -> int:
    """Forget rows deleted from the table; return how many rows are new (not yet labeled).

    The cheap path first: when the table's keys and the labeled keys have the same count
    and the same sum of 64-bit key hashes, nothing was added or deleted (two key scans
    instead of anti-joins over the votes).
    """
    src, k_col, rows_sql = label_set.source_sql, label_set.key_sql, label_set.rows_sql
    if full:  # every row is new: check the key once over the whole table
        _check_key(duck, label_set)
        return int(fetch_value(duck, f"SELECT count(*) FROM {src}"))
    fingerprint = f"count(*), coalesce(sum(CAST(hash({k_col}) AS HUGEINT)), 0)"
    n_src, h_src = fetch_one(duck, f"SELECT {fingerprint} FROM {src}")
    if not full:
        n_done, h_done = fetch_one(duck, f"SELECT {fingerprint} FROM {rows_sql}")
        if n_src == n_done and h_src == h_done:
            return 0
        gone = f"NOT EXISTS (SELECT 1 FROM {src} AS s WHERE s.{k_col} = r.{k_col})"
        n_gone = fetch_value(duck, f"SELECT count(*) FROM {rows_sql} AS r WHERE {gone}")
        if n_gone:  # rows deleted from the table lose their votes
            duck.execute(
                f"DELETE FROM {label_set.votes_sql} WHERE {k_col} IN (SELECT {k_col} FROM {rows_sql} AS r WHERE {gone})"
            )
            duck.execute(f"DELETE FROM {rows_sql} AS r WHERE {gone}")
    new_filter = f"NOT EXISTS (SELECT 1 FROM {rows_sql} AS r WHERE r.{k_col} = {src}.{k_col})"
    n_new, distinct_new, non_null_new = fetch_one(
        duck, f"SELECT count(*), count(DISTINCT {k_col}), count({k_col}) FROM {src} WHERE {new_filter}"
    )
    n_done = fetch_value(duck, f"SELECT count(*) FROM {rows_sql}")
    if non_null_new != n_new or distinct_new != n_new or n_done + n_new != n_src:
        _check_key(duck, label_set)
    return int(n_new)


def _check_key(duck, label_set: LabelSet) -> None:
    rows, distinct, non_null = fetch_one(
        duck, f"SELECT count(*), count(DISTINCT {label_set.key_sql}), count({label_set.key_sql}) FROM {label_set.source_sql}"
    )
    if non_null != rows or distinct != rows:
        raise DataError(
            f"key column {label_set.key!r} of {label_set.table!r} must be unique and not NULL "
            f"({rows - non_null} NULL, {non_null - distinct} duplicate values); choose another KEY.",
            obj=label_set.table, column=label_set.key,
        )


def _python_batch(connection, label_set: LabelSet, lfs: list[LFRow], columns: dict) -> PythonLFBatch | None:
    """One Arrow UDF for all Python LFs of a scan (their inputs converted once per chunk)."""
    if not lfs:
        return None
    from sqlml.labeling.python_lf import PythonLFBatch, PythonLFRunner

    runners = []
    for lf in lfs:
        fn = connection.session.registered.get(store.LF_KIND, {}).get(lf.name)
        if fn is None:
            raise LabelingError(
                f"Python labeling function {lf.name!r} is not registered in this connection; "
                f"run con.register({lf.name}) before APPLY (its code lives in Python, not in the database)."
            )
        runners.append(PythonLFRunner(fn, lf.lf_id, label_set.classes, label_set.key))
    inputs = list(dict.fromkeys(c for r in runners for c in r.inputs))
    batch = PythonLFBatch(runners, [*inputs, label_set.key], connection.session)
    batch.register(connection.duckdb, [columns[c.lower()][1] for c in inputs] + [label_set.key_type])
    return batch


def _class_index(lf: LFRow, label_set: LabelSet) -> str:
    """Maps the raw column r<lf_id> to a class index; an undeclared class raises, naming the row."""
    value = quote_ident(f"r{lf.lf_id}")
    if lf.kind == "python":
        return f"__py.{value}"
    fail = (
        f"error({quote_literal(_UNDECLARED + str(lf.lf_id) + _SEP)} || CAST({value} AS VARCHAR) || "
        f"{quote_literal(_SEP)} || CAST(__key AS VARCHAR))"
    )
    if lf.output == "index":
        return (
            f"CASE WHEN {value} BETWEEN 0 AND {label_set.k - 1} THEN {value} "
            f"WHEN {value} IS NULL OR {value} = -1 THEN NULL ELSE {fail} END"
        )
    whens = " ".join(f"WHEN {quote_literal(c)} THEN {i}" for i, c in enumerate(label_set.classes))
    return f"CASE WHEN {value} IS NULL THEN NULL ELSE CASE {value} {whens} ELSE {fail} END END"


def _scan(connection, label_set: LabelSet, lfs: list[LFRow], columns, where: str | None, n: int, reports,
          runners) -> None:
    """Evaluate ``lfs`` over the table (or the rows ``where`` selects) in one scan."""
    duck = connection.duckdb
    src, k_col = label_set.source_sql, label_set.key_sql
    sql_lfs = [lf for lf in lfs if lf.kind != "python"]
    batch = _python_batch(connection, label_set, [lf for lf in lfs if lf.kind == "python"], columns)
    if batch is not None:
        runners[id(batch)] = batch
    raw = [f"({lf.definition}) AS {quote_ident(f'r{lf.lf_id}')}" for lf in sql_lfs]
    if batch is not None:
        args = ", ".join(quote_ident(columns[c.lower()][0]) for c in batch.columns[:-1])
        raw.append(f"{quote_ident(batch.udf_name)}({args}{', ' if args else ''}{k_col}) AS __py")
    mapped = ", ".join(f"CAST({_class_index(lf, label_set)} AS SMALLINT) AS {quote_ident(str(lf.lf_id))}" for lf in lfs)
    where_sql = f" WHERE {where}" if where else ""
    # MATERIALIZED: the UDF runs once per row, not once per struct field read from it (SQL
    # LFs alone stream: materializing rows x LFs costs memory for nothing)
    materialized = "MATERIALIZED " if batch is not None else ""
    sql = (
        f"INSERT INTO {label_set.votes_sql} "
        f"WITH raw AS {materialized}(SELECT {k_col} AS __key, {', '.join(raw)} FROM {src}{where_sql}) "
        f"SELECT __key, CAST(lf AS SMALLINT), label FROM "
        f"(UNPIVOT (SELECT __key, {mapped} FROM raw) ON COLUMNS(* EXCLUDE (__key)) INTO NAME lf VALUE label)"
    )
    try:
        with progress.watch(duck, f"APPLY LABELING FUNCTIONS ON {label_set.table}"):
            duck.execute(sql)
    except duckdb.Error as error:
        raise _translate(error, lfs, label_set, connection) from None
    for lf in lfs:
        reports[lf.name].rows_evaluated = int(n)


def _translate(error: duckdb.Error, lfs: list[LFRow], label_set: LabelSet, connection) -> Exception:
    original = connection.session.errors.original(error)
    if original is not None:
        return original
    text = str(error)
    match = re.search(re.escape(_UNDECLARED) + r"(\d+)" + _SEP + "(.*?)" + _SEP + r"(.*)", text, re.S)
    if match:
        lf_id, value, key = int(match.group(1)), match.group(2), match.group(3).splitlines()[0]
        name = next((lf.name for lf in lfs if lf.lf_id == lf_id), str(lf_id))
        return LabelingError(
            f"labeling function {name!r} voted {value!r}, which is not a declared class of "
            f"{label_set.table!r} {label_set.classes} (row {label_set.key} = {key}). Return one of the "
            f"classes (or its 0-based index), NULL to abstain."
        )
    return DataError(f"applying labeling functions to {label_set.table!r} failed: {text.splitlines()[0]}")
