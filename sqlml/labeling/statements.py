"""Handlers of the weak-supervision statements (see ``sqlml/query/statements.py``).

    CREATE [OR REPLACE] LABELING FUNCTION name ON table [WITH (classes := [...])] AS expr
    CREATE [OR REPLACE] LABELING FUNCTIONS ON table FROM COLUMN col | FROM TABLE votes [KEY k] [WITH (...)]
    DROP LABELING FUNCTION [IF EXISTS] name
    APPLY LABELING FUNCTIONS ON table [KEY column] [WITH (full := true)]
    CREATE [OR REPLACE] LABEL MODEL name ON table [KEY column] [GOLD column] [WITH (...)]
    DROP LABEL MODEL [IF EXISTS] name
"""

from __future__ import annotations

from sqlml.errors import InvalidOptionError
from sqlml.labeling import store
from sqlml.sqlutil import quote_ident


def create_labeling_function(ctx):
    from sqlml.labeling.lf import create_sql_lf

    p = ctx.parser()
    p.expect("CREATE")
    replace = p.accept("OR", "REPLACE")
    p.expect("LABELING", "FUNCTION")
    name = p.identifier("a labeling function name")
    p.expect("ON")
    table = p.qualified_name("a table name")
    options = p.options() if p.accept("WITH") else {}
    p.expect("AS")
    expression = p.rest("an SQL expression (NULL abstains)")
    lf = create_sql_lf(ctx.duck, name, table, expression, options, replace)
    return _show(ctx, {"labeling_function": [lf.name], "table": [lf.table], "returns": [lf.output]})


def create_labeling_functions(ctx):
    """Votes made elsewhere become labeling functions (see ``sqlml/labeling/imported.py``)."""
    from sqlml.labeling.imported import from_column, from_table

    p = ctx.parser()
    p.expect("CREATE")
    replace = p.accept("OR", "REPLACE")
    p.expect("LABELING", "FUNCTIONS", "ON")
    parts = p.qualified_name("a table name")
    p.expect("FROM")
    if p.accept("COLUMN"):
        column = p.identifier("the label matrix column (INTEGER[])")
        options = p.options() if p.accept("WITH") else {}
        p.end()
        names = from_column(ctx.duck, parts, column, options, replace)
        source = f"column {column}"
    else:
        p.expect("TABLE")
        votes = p.qualified_name("a votes table (key, lf, label)")
        key = p.identifier("a key column") if p.accept("KEY") else None
        options = p.options() if p.accept("WITH") else {}
        p.end()
        names = from_table(ctx.duck, parts, votes, key, options, replace)
        source = f"table {'.'.join(votes)}"
    table = store.canonical_table(parts)
    return _show(ctx, {"labeling_function": names, "table": [table] * len(names), "source": [source] * len(names)})


def drop_labeling_function(ctx):
    from sqlml.labeling.votes import drop_votes_of

    p = ctx.parser()
    p.expect("DROP", "LABELING", "FUNCTION")
    if_exists = p.accept("IF", "EXISTS")
    name = p.identifier("a labeling function name")
    p.end()
    if if_exists and store.get_lf(ctx.duck, name) is None:
        return None
    lf = store.require_lf(ctx.duck, name)
    drop_votes_of(ctx.duck, lf)
    store.delete_lf(ctx.duck, lf)
    ctx.session.registered.get(store.LF_KIND, {}).pop(name, None)
    if not store.lfs_of(ctx.duck, lf.table):  # the last one: the table forgets its classes
        label_set = store.get_label_set(ctx.duck, lf.table)
        if label_set is not None:
            store.drop_label_set(ctx.duck, label_set)
    return None


APPLY_OPTIONS = ("full",)


def apply_labeling_functions(ctx):
    from sqlml.labeling.votes import apply

    p = ctx.parser()
    p.expect("APPLY", "LABELING", "FUNCTIONS", "ON")
    table = store.canonical_table(p.qualified_name("a table name"))
    key = p.identifier("a key column") if p.accept("KEY") else None
    options = p.options() if p.accept("WITH") else {}
    p.end()
    unknown = set(options) - set(APPLY_OPTIONS)
    if unknown:
        raise InvalidOptionError("APPLY LABELING FUNCTIONS", sorted(unknown)[0], allowed=APPLY_OPTIONS)
    reports = apply(ctx.connection, table, key, full=bool(options.get("full", False)))
    return _show(
        ctx,
        {
            "labeling_function": [r.name for r in reports],
            "status": [r.status for r in reports],
            "rows_evaluated": ([r.rows_evaluated for r in reports], "BIGINT"),
            "votes": ([r.votes for r in reports], "BIGINT"),
            "faults": ([r.faults for r in reports], "BIGINT"),
        },
    )


def create_label_model(ctx):
    from sqlml.labeling.fit import create_label_model as create

    p = ctx.parser()
    p.expect("CREATE")
    replace = p.accept("OR", "REPLACE")
    p.expect("LABEL", "MODEL")
    name = p.identifier("a label model name")
    p.expect("ON")
    table = store.canonical_table(p.qualified_name("a table name"))
    key = gold = None
    while True:
        if p.accept("KEY"):
            key = p.identifier("a key column")
        elif p.accept("GOLD"):
            gold = p.identifier("a gold label column")
        else:
            break
    options = p.options() if p.accept("WITH") else {}
    p.end()
    summary = create(ctx.connection, name, table, key=key, gold=gold, options=options, replace=replace)
    return _show(ctx, summary)


def drop_label_model(ctx):
    from sqlml.labeling.output import drop_label_model as drop

    p = ctx.parser()
    p.expect("DROP", "LABEL", "MODEL")
    if_exists = p.accept("IF", "EXISTS")
    name = p.identifier("a label model name")
    p.end()
    drop(ctx.duck, name, missing_ok=if_exists)
    return None


SQL_TYPES = {str: "VARCHAR", int: "BIGINT", float: "DOUBLE", list: "DOUBLE[]"}


def _show(ctx, columns: dict):
    """A small result as a relation: each column a typed list parameter, unnested side by side.

    (Not ``from_arrow``: that loads DuckDB's Arrow scan machinery, ~50 MB, for a few rows.)
    """
    names, values, types = [], [], []
    for name, column in columns.items():
        data, sql_type = column if isinstance(column, tuple) else (column, SQL_TYPES[type(column[0])])
        names.append(name)
        values.append(list(data))
        types.append(sql_type)
    select = ", ".join(f"unnest(?::{t}[]) AS {quote_ident(n)}" for n, t in zip(names, types, strict=True))
    return ctx.connection.wrap(ctx.duck.sql(f"SELECT {select}", params=values))
