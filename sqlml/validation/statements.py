"""The data-schema statements (routed here by ``sqlml/query/statements.py``).

    CREATE [OR REPLACE] DATA SCHEMA [IF NOT EXISTS] name FROM source [WITH (option := value, ...)]
    ALTER DATA SCHEMA name ACCEPT source [WITH (reason := '...')]
    ALTER DATA SCHEMA name ADD [STATISTICS] CHECK check_name AS sql_boolean_expression
    ALTER DATA SCHEMA name DROP CHECK [IF EXISTS] check_name
    ALTER DATA SCHEMA name SET (min_rows := ..., max_rows := ..., significance := ...)
    ALTER DATA SCHEMA name SET COLUMN column (min := ..., max := ..., domain := [...], ...)
    DROP DATA SCHEMA [IF EXISTS] name

``source`` is a table or view name, a quoted string (table name, file path or query), or
a parenthesised query. Each statement is one transaction; every change is a new version.
"""

from __future__ import annotations

from sqlml.errors import InvalidOptionError
from sqlml.validation import checks as custom, evolution, schema as schemas, sources


def create_data_schema(ctx):
    p = ctx.parser()
    p.expect("CREATE")
    replace = p.accept("OR", "REPLACE")
    p.expect("DATA", "SCHEMA")
    if_not_exists = p.accept("IF", "NOT", "EXISTS")
    name = p.identifier("a data schema name")
    p.expect("FROM")
    source = _source(p)
    options = p.options() if p.accept("WITH") else {}
    p.end()
    if if_not_exists and schemas.exists(ctx.duck, name):
        return None
    schema = evolution.create(ctx.duck, name, source, options, replace_existing=replace)
    return _schema_table(ctx, schema)


def alter_data_schema(ctx):
    p = ctx.parser()
    p.expect("ALTER", "DATA", "SCHEMA")
    name = p.identifier("a data schema name")
    if p.accept("ACCEPT"):
        source = _source(p)
        options = p.options() if p.accept("WITH") else {}
        p.end()
        unknown = [k for k in options if k != "reason"]
        if unknown:
            raise InvalidOptionError("ALTER DATA SCHEMA ... ACCEPT", unknown[0], allowed=["reason"])
        schema, changes = evolution.accept(ctx.duck, name, source, options.get("reason"))
        if schema is None:
            message = "nothing to accept: the data conforms to the schema"
            if changes:
                message += "; still failing: " + "; ".join(changes)
            return _message(ctx, name, schemas.current_version(ctx.duck, name), message)
        return _message(ctx, name, schema.version, schema.reason)
    if p.accept("ADD"):
        scope = custom.STATISTICS if p.accept("STATISTICS") else custom.ROW
        p.expect("CHECK")
        check_name = p.identifier("a check name")
        p.expect("AS")
        expression = p.rest("a SQL boolean expression")
        schema = evolution.add_check(ctx.duck, name, check_name, scope, expression)
        return _message(ctx, name, schema.version, schema.reason)
    if p.accept("DROP"):
        p.expect("CHECK")
        if_exists = p.accept("IF", "EXISTS")
        check_name = p.identifier("a check name")
        p.end()
        schema = evolution.drop_check(ctx.duck, name, check_name, missing_ok=if_exists)
        if schema is None:
            return None
        return _message(ctx, name, schema.version, schema.reason)
    if p.accept("SET"):
        column = None
        if p.accept("COLUMN"):
            column = p.identifier("a column name")
        options = p.options()
        p.end()
        schema = evolution.set_options(ctx.duck, name, options, column)
        return _message(ctx, name, schema.version, schema.reason)
    p.error("expected ACCEPT, ADD CHECK, ADD STATISTICS CHECK, DROP CHECK or SET")


def drop_data_schema(ctx):
    p = ctx.parser()
    p.expect("DROP", "DATA", "SCHEMA")
    if_exists = p.accept("IF", "EXISTS")
    name = p.identifier("a data schema name")
    p.end()
    evolution.drop(ctx.duck, name, missing_ok=if_exists)
    return None


def _source(p) -> str:
    """A table name, a string (table, file or query), a parenthesised or a bare query.

    A bare query (``FROM SELECT ...``) runs to the end or to a top-level ``WITH (``, which
    opens the options (a CTE's ``WITH`` is followed by a name, never by a parenthesis).
    """
    tok = p.current
    if tok is None:
        p.error("expected a table name, a quoted source or a (query)")
    if tok.word in ("SELECT", "WITH", "FROM", "VALUES"):
        return p.until("WITH", "(", what="a query")
    if tok.kind == "string":
        return p.literal()
    if tok.kind == "operator" and tok.text == "(":
        depth = 0
        start = tok
        while p.current is not None:
            t = p.current
            if t.kind == "operator":
                depth += t.text.count("(") - t.text.count(")")
            p.pos += 1
            if depth == 0:
                return p.sql[start.start + 1 : t.start].strip()
        p.error("unbalanced parentheses in the source query")
    return sources.name_text(p.qualified_name("a table name"))


def _schema_table(ctx, schema):
    return ctx.connection.wrap(ctx.duck.sql(
        "SELECT column_name, data_type, min_fraction, len(domain) AS domain_size, valid_min, valid_max, min_value, max_value, "
        "is_unique, environments, notes FROM ml_schema(?, schema_version := ?)",
        params=[schema.name, schema.version],
    ))


def _message(ctx, name: str, version: int, message: str):
    return ctx.connection.wrap(ctx.duck.sql(
        "SELECT ?::VARCHAR AS data_schema, ?::INTEGER AS version, ?::VARCHAR AS change", params=[name, version, message]
    ))
