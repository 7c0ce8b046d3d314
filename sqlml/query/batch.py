"""Statements that run together: ``Connection.sql_many`` and the plain statements of a script.

The front end decides which statements form one batch (plain ones, up to the next sqlml
statement, which may create or drop models); the optimizer plans the batch's model calls
together (``sqlml.optimizer.runtime.multi_query``) and each statement then runs as usual.
"""

from __future__ import annotations

from typing import Any

from sqlml.optimizer.model_functions import mentions_model_call
from sqlml.optimizer.runtime.multi_query import plan
from sqlml.query.classify import match_statement, returns_rows
from sqlml.query.tokens import split_statements, tokenize


def sql_many(connection, statements: list[str]) -> list[Any]:
    """Run ``statements`` in order, sharing their model calls; a Relation or None each."""
    results = []
    group: list[str] = []

    def flush():
        if group:
            results.extend(_run_group(connection, list(group)))
            group.clear()

    for text in statements:
        if not isinstance(text, str) or not text.strip():
            raise TypeError(f"sql_many takes SQL statements as strings, got {text!r}")
        if len(split_statements(text)) > 1:
            raise ValueError("sql_many takes one statement per string; pass a script to Connection.sql")
        if match_statement(tokenize(text)) is not None:
            flush()
            results.append(connection.sql(text))
        else:
            group.append(text)
    flush()
    return results


def _run_group(connection, texts: list[str]) -> list[Any]:
    """Plan together (the shared results are computed), then run each statement."""
    import duckdb

    results = []
    for planned in plan(connection, texts, check_queries=False):
        if not planned.shared:
            results.append(connection.sql(planned.text))
            continue
        try:  # straight to DuckDB: the rewrite is one plain statement, done optimizing
            relation = connection.duckdb.sql(planned.sql)
        except duckdb.Error as error:
            if planned.checked:
                connection.session.reraise(error)
            # a query binds when its relation is made and runs when read: nothing ran
            import logging

            logging.getLogger("sqlml.query").info("shared model calls not used for one statement (%s); it runs alone", error)
            results.append(connection.sql(planned.text))
            continue
        results.append(connection.wrap(relation) if returns_rows(planned.text) else None)
    return results


def share_script(connection, text: str, spans: list[tuple[int, int]], start: int) -> dict[int, str]:
    """Plan the run of plain statements from ``start`` in a script together.

    Returns {statement index: SQL to run} for the statements that read shared results
    (computed before this returns); empty when fewer than two of them call models.
    The run ends at the first sqlml statement (it may create or drop models).
    """
    run: list[tuple[int, str]] = []  # every plain statement: those that write matter too
    for index in range(start, len(spans)):
        a, b = spans[index]
        statement = text[a:b].strip()
        if match_statement(tokenize(statement)) is not None:
            break
        run.append((index, statement))
    if sum(1 for _, statement in run if mentions_model_call(statement)) < 2:
        return {}
    plans = plan(connection, [statement for _, statement in run])
    return {index: p.sql for (index, _), p in zip(run, plans, strict=True) if p.shared}
