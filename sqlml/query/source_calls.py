"""SQL functions that read a table or query run before their statement, on the caller's connection.

A Python SQL function runs inside DuckDB while the caller's connection is busy with the
outer query, so it reads through a cursor of its own, and a cursor sees neither the
caller's registered views and DataFrames nor its temporary tables nor the writes of its
open transaction. So a call of a table function declared with ``sources=`` whose
arguments are constants (``SELECT * FROM ml_statistics('dfv', store := false)``) runs
first, here, with ``Session.borrow`` handing it the caller's connection and the caller's
DataFrames named in its arguments registered as views. Its rows become an Arrow table
that takes the call's place in the text: DuckDB scans it like any DataFrame (the relation
keeps it), so the statement reads exactly what the function returned. A call whose
arguments are not constants (a lateral column, a parameter) is left to run in DuckDB.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

from sqlml import frames
from sqlml.query.params import placeholders
from sqlml.query.tokens import Token, tokenize
from sqlml.udf import Function, load_builtin

log = logging.getLogger("sqlml.query")
_names = itertools.count(1)


def source_functions() -> dict[str, Function]:
    return {name: f for name, f in load_builtin().items() if f.runs_first}


def prepare(connection, text: str, frame) -> tuple[str, dict[str, Any]]:
    """``text`` with each constant call of a source-reading function replaced by its rows.

    Returns the new text and {name: pyarrow.Table} for the names that replaced the calls.
    """
    wanted = source_functions()
    lowered = text.lower()
    if not any(name in lowered for name in wanted):
        return text, {}
    tokens = tokenize(text)
    calls = list(_calls(tokens, wanted))
    if not calls:
        return text, {}
    out, last, tables = [], 0, {}
    for function, start, end, args in calls:
        values = _argument_values(connection, function, args, text)
        if values is None:
            log.debug("%s: arguments are not constants; it runs inside DuckDB (committed data only)", function.name)
            continue
        rows = _run(connection, function, values, [t for _, arg in args for t in arg], frame)
        name = f"__sqlml_source_{next(_names)}"
        tables[name] = rows
        out.append(text[last:start])
        out.append(name)
        last = end
    out.append(text[last:])
    return "".join(out), tables


def _calls(tokens: list[Token], wanted: dict[str, Function]):
    """(function, start, end, [(named or None, arg tokens)]) for each call at any depth."""
    i = 0
    while i < len(tokens) - 1:
        token = tokens[i]
        function = wanted.get(token.text.lower()) if token.kind in ("identifier", "keyword") and not token.quoted else None
        if function is None or tokens[i + 1].text != "(" or (i > 0 and tokens[i - 1].text == "."):
            i += 1
            continue
        depth, j = 0, i + 1
        args: list[list[Token]] = []
        current: list[Token] = []
        while j < len(tokens):
            t = tokens[j]
            if t.kind == "operator" and t.text in ("(", "["):
                depth += 1
                if depth == 1:
                    j += 1
                    continue
            elif t.kind == "operator" and t.text in (")", "]"):
                depth -= 1
                if depth == 0:
                    break
            elif depth == 1 and t.kind == "operator" and t.text == ",":
                args.append(current)
                current = []
                j += 1
                continue
            current.append(t)
            j += 1
        if j >= len(tokens):
            return
        if current:
            args.append(current)
        named: list[tuple[str | None, list[Token]]] = []
        for arg in args:
            if len(arg) >= 2 and arg[1].kind == "operator" and arg[1].text in (":=", "=>"):
                named.append((arg[0].name.lower(), arg[2:]))
            else:
                named.append((None, arg))
        yield function, token.start, tokens[j].end, named
        i = j + 1


def _argument_values(connection, function: Function, args, text: str) -> list[Any] | None:
    """The values DuckDB would pass (declared types, defaults filled), or None if not constant."""
    positional = [a for n, a in args if n is None]
    by_name = {n: a for n, a in args if n is not None}
    if len(positional) != len(function.positional) or set(by_name) - set(function.named):
        return None  # let DuckDB report the bad call in its own words
    if any(placeholders(a) for _, a in args):
        return None
    if any(not a for _, a in args):
        return None

    def text_of(arg: list[Token]) -> str:
        return text[arg[0].start : arg[-1].end]

    assert function.params is not None  # a table function declares its parameter types
    exprs: list[str | None] = [text_of(a) for a in positional]
    types = list(function.params[: len(positional)])
    for name, (kind, _) in function.named.items():
        exprs.append(text_of(by_name[name]) if name in by_name else None)
        types.append(kind)
    select = ", ".join(f"CAST(({e}) AS {t})" if e is not None else f"CAST(NULL AS {t})" for e, t in zip(exprs, types, strict=True))
    try:
        row = connection.duckdb.execute(f"SELECT {select}").fetchall()[0]
    except Exception:  # noqa: BLE001 - not constant (a column of the outer query, a subquery...)
        return None
    values = list(row)
    for index, (name, (_, default)) in enumerate(function.named.items(), start=len(positional)):
        if name not in by_name:
            values[index] = default
    return values


def _run(connection, function: Function, values: list[Any], arg_tokens: list[Token], frame):
    duck = connection.duckdb
    session = connection.session
    log.debug("running %s(%s) before its statement, on the caller's connection", function.name, values)
    with frames.registered_from_frame(duck, frame, arg_tokens), session.borrow(duck):
        rows = function.fn(session, *values)
    # DuckDB converts the rows as it converts a function's result (the same types, the same rules)
    return duck.sql(f"SELECT unnest($1::{function.returns}, max_depth := 2)", params=[rows]).to_arrow_table()
