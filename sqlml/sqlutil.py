"""Safe pieces of SQL: quoted identifiers and table references, never pasted user text.

Build queries from these (or from sqlglot builders) and pass values as ``?`` parameters.

    >>> quote_ident('my "odd" table')
    '"my ""odd"" table"'
    >>> table_ref("main.flights")
    '"main"."flights"'
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence


def quote_ident(name: str) -> str:
    """A double-quoted identifier; any name (quotes, spaces, keywords) is safe."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"not an identifier: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """A single-quoted string literal (prefer ``?`` parameters where DuckDB takes them)."""
    return "'" + str(value).replace("'", "''") + "'"


def table_ref(name: str | Sequence[str]) -> str:
    """A (possibly qualified) table reference: ``"a"`` or ``"s"."a"``.

    A string is split at dots that are not inside double quotes, so ``'s.t'`` means
    table ``t`` in schema ``s`` and ``'"a.b"'`` means the table named ``a.b``.
    """
    parts = split_name(name) if isinstance(name, str) else list(name)
    return ".".join(quote_ident(p) for p in parts)


def split_name(name: str) -> list[str]:
    """``'s."odd.name"'`` -> ``['s', 'odd.name']``."""
    parts, current, quoted, i = [], [], False, 0
    while i < len(name):
        ch = name[i]
        if ch == '"':
            if quoted and i + 1 < len(name) and name[i + 1] == '"':
                current.append('"')
                i += 2
                continue
            quoted = not quoted
        elif ch == "." and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    if any(p == "" for p in parts):
        raise ValueError(f"not a table name: {name!r}")
    return parts


def column_list(names: Iterable[str]) -> str:
    return ", ".join(quote_ident(n) for n in names)


def is_query_text(text: str) -> bool:
    """Whether ``text`` is a query (``SELECT ...``, ``WITH ...``, ``FROM ...``) rather than a table name."""
    from sqlml.query.tokens import tokenize

    tokens = tokenize(text)
    if not tokens:
        return False
    first = tokens[0]
    return (first.word in {"SELECT", "WITH", "FROM", "VALUES", "TABLE", "PIVOT", "UNPIVOT"}) or (
        first.kind == "operator" and first.text == "("
    )


_PARSER = threading.local()


def select_query(text: str, *, argument: str = "query", where: str = "") -> str:
    """The user's query text checked to be exactly one read-only query, ready to wrap.

    Query-text arguments (``ml_validate('SELECT ...', ...)``, ``baseline :=``, the query of
    ``ml_evaluate``) are attack surface: pasted into ``(...)`` unchecked, text such as
    ``SELECT * FROM t); DROP TABLE victim; SELECT (1`` runs three statements. DuckDB's own
    parser splits the text; anything but one SELECT-type statement (SELECT, WITH, FROM,
    VALUES, TABLE, set operations) is an ``InvalidOptionError`` naming the argument. The
    result ends with a newline, so a trailing ``-- comment`` cannot swallow a closing paren.
    """
    import duckdb

    from sqlml.errors import InvalidOptionError

    where = where or argument
    if not isinstance(text, str) or not text.strip():
        raise InvalidOptionError(where, argument, "needs a query (SELECT ...) and got an empty text")
    if "\x00" in text:
        raise InvalidOptionError(where, argument, "the query text contains a NUL character")
    parser = getattr(_PARSER, "con", None)
    if parser is None:
        parser = _PARSER.con = duckdb.connect()
    try:
        statements = parser.extract_statements(text)
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidOptionError(where, argument, f"is not a valid query: {first}") from None
    if len(statements) != 1:
        raise InvalidOptionError(
            where, argument, f"must be exactly one query, and the text holds {len(statements)} statements"
        )
    if statements[0].type != duckdb.StatementType.SELECT:
        kind = statements[0].type.name
        raise InvalidOptionError(where, argument, f"must be a read-only query (SELECT ...), not a {kind} statement")
    return text.strip().rstrip(";").rstrip() + "\n"


def relation_sql(table_or_query: str, *, argument: str = "query", where: str = "") -> str:
    """SQL for a FROM clause given a table name or a query: ``"t"`` or ``(SELECT ...)``.

    A query goes through ``select_query`` (exactly one read-only statement)."""
    if is_query_text(table_or_query):
        return f"({select_query(table_or_query, argument=argument, where=where)})"
    return table_ref(table_or_query)


def fetch_one(duck, sql: str, params=None):
    """The first row of a query, or None, leaving the connection free.

    DuckDB 2.0 keeps a half-read ``execute()`` result open and refuses the next
    ``sql()`` on that connection; ``fetchall()`` drains it.
    """
    rows = duck.execute(sql, params).fetchall()
    return rows[0] if rows else None


def fetch_value(duck, sql: str, params=None):
    """The first column of the first row, or None."""
    row = fetch_one(duck, sql, params)
    return None if row is None else row[0]
