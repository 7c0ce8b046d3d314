"""``ml_label_model_predict(label_model, query)``: a fitted label model labels new rows.

The label model's labeling functions run on the query's rows (SQL LFs as expressions, with
the query aliased as the labeled table, so ``table.column`` references resolve; Python LFs
as Arrow UDFs), into a temporary votes table; the rows' vote patterns are aggregated in
SQL exactly as ``CREATE LABEL MODEL`` does, and the fitted distributions (stored in
``sqlml.label_model_params``, never refitted) give each pattern its posterior. The result
has the fitted table's columns: the key column (as named in the labeled table), ``label``,
``probs``, ``confidence``, ``source`` and ``weight``; on the training rows it equals the
fitted table. A query that has the model's GOLD column gets gold rows, as in the fit.

The function is a table function in the FROM clause; the router computes it into a TEMP
table before the statement runs (``materialize``) and the statement reads that table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from sqlml import catalog
from sqlml.errors import DataError, InvalidOptionError, LabelingError
from sqlml.labeling import store
from sqlml.labeling.store import LabelSet
from sqlml.sqlutil import fetch_one, quote_ident, relation_sql

FUNCTION = "ml_label_model_predict"
VOTES, ROWS = "__sqlml_lmp_votes", "__sqlml_lmp_rows"
_CALL = re.compile(r"\bml_label_model_predict\s*\(", re.IGNORECASE)


@dataclass
class QueryRows(LabelSet):
    """A label set whose rows come from a query: votes and rows in TEMP tables."""

    source: str = ""

    @property
    def source_sql(self) -> str:
        return self.source

    @property
    def votes_sql(self) -> str:
        return VOTES

    @property
    def rows_sql(self) -> str:
        return ROWS


def load_model(duck, name: str):
    """(catalog properties, FittedModel, LF names, fingerprints) of a label model."""
    from sqlml.labeling.models.base import FittedModel
    from sqlml.labeling.models.majority import MajorityModel

    entry = catalog.require_object(duck, store.MODEL_KIND, name)
    props = entry["properties"]
    row = fetch_one(
        duck,
        "SELECT lfs, fingerprints, posterior, class_balance, log_vote, log_abstain FROM sqlml.label_model_params "
        "WHERE model = ?", [name],
    )
    if row is None:
        raise LabelingError(
            f"label model {name!r} was fitted before sqlml stored label model parameters; refit it "
            f"(CREATE OR REPLACE LABEL MODEL {name} ...) to apply it to new rows."
        )
    lfs, fingerprints, posterior, balance, log_vote, log_abstain = row
    k, m = len(balance), len(lfs)
    cls = MajorityModel if posterior == "votes" else FittedModel
    model = cls(
        method=props.get("method", "label_model"),
        class_balance=np.asarray(balance, dtype=np.float64),
        log_vote=np.asarray(log_vote, dtype=np.float64).reshape(m, k, k),
        log_abstain=None if log_abstain is None else np.asarray(log_abstain, dtype=np.float64).reshape(m, k),
    )
    return props, model, list(lfs), list(fingerprints)


def predict(connection, name: str, query: str, target: str) -> None:
    """Label the rows of ``query`` (a query or a table name) with label model ``name`` into TEMP table ``target``."""
    from sqlml.labeling.fit import ENTRIES, PATTERNS, ROW_SIGNATURES, collect, row_patterns
    from sqlml.labeling.models.stats import clamp_gold
    from sqlml.labeling.output import pattern_results, write_labels

    duck = connection.duckdb
    if not isinstance(name, str) or not name:
        raise InvalidOptionError(FUNCTION, "label_model", "give the name of a label model")
    props, model, lf_names, fingerprints = load_model(duck, name)
    label_set = store.require_label_set(duck, props["table"])
    current = {lf.name: lf for lf in store.lfs_of(duck, props["table"])}
    lfs = []
    for lf_name, fp in zip(lf_names, fingerprints, strict=True):
        lf = current.get(lf_name)
        if lf is None or lf.fingerprint != fp:
            change = "was dropped" if lf is None else "was replaced"
            raise LabelingError(
                f"label model {name!r}: labeling function {lf_name!r} {change} after the model was fitted; refit it "
                f"(CREATE OR REPLACE LABEL MODEL {name} ON {props['table']} ...) before labeling new rows."
            )
        lfs.append(lf)
    key = props["key"]
    source = relation_sql(query, argument="query", where=FUNCTION)
    alias = quote_ident(label_set.parts[-1])
    rows_of = QueryRows(label_set.table, label_set.parts, label_set.classes, key, label_set.key_type,
                        label_set.storage, source=f"{source} AS {alias}")
    columns = _columns(duck, rows_of.source_sql, name)
    if key.lower() not in columns:
        raise DataError(
            f"label model {name!r}: the query has no key column {key!r} (it has {', '.join(c for c, _ in columns.values())}); "
            f"select it, as the labeled table {props['table']!r} names it.", obj=name, column=key,
        )
    _check_lfs(duck, name, lfs, rows_of.source_sql, columns)
    gold = props.get("gold")
    gold = columns[gold.lower()][0] if gold and gold.lower() in columns else None
    try:
        _vote(connection, rows_of, lfs, columns)
        rows = row_patterns(duck, rows_of, [lf.lf_id for lf in lfs], gold)
        stats = collect(duck, rows_of, [lf.lf_id for lf in lfs], rows)
        probs = clamp_gold(model.posterior(stats), stats.gold, stats.k)
        write_labels(duck, target, rows_of, stats, rows, pattern_results(stats, model, probs, props.get("options", {})),
                     temp=True)
    finally:
        for temp in (VOTES, ROWS, PATTERNS, ENTRIES, ROW_SIGNATURES):
            duck.execute(f"DROP TABLE IF EXISTS {temp}")


def _columns(duck, source_sql: str, name: str) -> dict[str, tuple[str, str]]:
    import duckdb

    try:
        relation = duck.sql(f"SELECT * FROM {source_sql} LIMIT 0")
    except duckdb.Error as error:
        raise DataError(f"label model {name!r}: the query failed: {str(error).splitlines()[0]}", obj=name) from None
    return {c.lower(): (c, str(t)) for c, t in zip(relation.columns, relation.types, strict=True)}


def _check_lfs(duck, name: str, lfs, source_sql: str, columns) -> None:
    """Each LF must bind on the query's rows: a missing column is named with its LF."""
    import duckdb

    for lf in lfs:
        if lf.kind == "python":
            missing = [c for c in lf.inputs or [] if c.lower() not in columns]
        else:
            try:
                duck.sql(f"SELECT ({lf.definition}) FROM {source_sql} LIMIT 0")
                continue
            except duckdb.Error as error:
                first = str(error).splitlines()[0]
                found = re.search(r'column "?([^"\s]+)"? not found', first, re.IGNORECASE)
                missing = [found.group(1)] if found else []
                if not missing:
                    raise DataError(
                        f"label model {name!r}: labeling function {lf.name!r} does not run on the query's rows: {first}",
                        obj=name,
                    ) from None
        if missing:
            raise DataError(
                f"label model {name!r}: labeling function {lf.name!r} reads column {missing[0]!r}, which the query "
                f"lacks (it has {', '.join(c for c, _ in columns.values())}).", obj=name, column=missing[0],
            )


def _vote(connection, rows_of: QueryRows, lfs, columns) -> None:
    """The LFs' votes on the query's rows into VOTES, its keys into ROWS (checked unique)."""
    from sqlml.labeling.votes import LFReport, _scan

    duck = connection.duckdb
    key_name, key_type = columns[rows_of.key.lower()]
    rows_of.key, rows_of.key_type = key_name, key_type
    k_col = quote_ident(key_name)
    duck.execute(f"CREATE OR REPLACE TEMP TABLE {ROWS} AS SELECT {k_col} FROM {rows_of.source_sql}")
    n, distinct, non_null = fetch_one(duck, f"SELECT count(*), count(DISTINCT {k_col}), count({k_col}) FROM {ROWS}")
    if n != distinct or n != non_null:
        raise DataError(
            f"{FUNCTION}: key column {key_name!r} of the query must be unique and not NULL "
            f"({n - non_null} NULL, {non_null - distinct} duplicate values).", column=key_name,
        )
    duck.execute(f"CREATE OR REPLACE TEMP TABLE {VOTES} ({k_col} {key_type}, lf SMALLINT, label SMALLINT)")
    reports = {lf.name: LFReport(lf.name, "predict") for lf in lfs}
    runners: dict = {}
    try:
        _scan(connection, rows_of, lfs, columns, None, n, reports, runners)
    finally:
        for batch in runners.values():
            batch.unregister(duck)


def mentions(statement: str) -> bool:
    return _CALL.search(statement) is not None


def materialize(connection, statement: str) -> str:
    """``statement`` with each ``ml_label_model_predict('lm', 'query')`` in FROM replaced by a
    TEMP table holding its rows (computed here); the previous call's tables are dropped."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(statement, read="duckdb")
    except sqlglot.errors.SqlglotError as error:
        raise InvalidOptionError(FUNCTION, "query", f"the statement around it does not parse: {error}") from None
    state = connection.session.cache("labeling")
    for old in state.pop("predict_tables", []):
        connection.duckdb.execute(f"DROP TABLE IF EXISTS {old}")
    made = state.setdefault("predict_tables", [])
    for call in list(tree.find_all(exp.Anonymous)):
        if call.name.lower() != FUNCTION:
            continue
        if not isinstance(call.parent, exp.Table):
            raise InvalidOptionError(FUNCTION, "label_model", "is a table function: use it in FROM, "
                                     "e.g. SELECT * FROM ml_label_model_predict('lm', 'SELECT * FROM new_rows')")
        args = call.expressions
        if len(args) != 2 or not all(isinstance(a, exp.Literal) and a.is_string for a in args):
            raise InvalidOptionError(FUNCTION, "label_model",
                                     "takes two text literals: the label model's name and a query or table name")
        state["counter"] = state.get("counter", 0) + 1
        target = f"__sqlml_label_model_predict_{state['counter']}"
        predict(connection, args[0].this, args[1].this, target)
        made.append(target)
        table = call.parent
        if table.alias == "":
            table.set("alias", exp.TableAlias(this=exp.to_identifier(FUNCTION)))
        table.set("this", exp.to_identifier(target))
    return tree.sql(dialect="duckdb")
