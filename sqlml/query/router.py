"""Run a script: sqlml statements go to their handlers, everything else to DuckDB.

The fast path: text with none of the words that can start an sqlml statement and no
``ml_`` call goes to DuckDB unparsed (a substring test and a regular expression, about a
microsecond; a text seen before is one dictionary lookup).
Otherwise the script is split at top-level semicolons; each statement is matched
against ``STATEMENTS`` by its leading words (``sqlml.query.classify``), and plain
statements that call ``ml_`` functions pass through the optimizer first
(``Connection.optimize``; a run of them in one script is planned together, see
``sqlml.query.batch``).
"""

from __future__ import annotations

import importlib
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

import duckdb

from sqlml import frames
from sqlml.errors import ParameterError, ReadOnlyError
from sqlml.query import params as parameters, source_calls
from sqlml.query.classify import match_statement, plain_verdict, returns_rows
from sqlml.query.parser import StatementParser
from sqlml.query.statements import MATERIALIZED_FUNCTIONS, READ_ONLY, STATEMENTS
from sqlml.query.tokens import split_statements, tokenize
from sqlml.relation import Relation
from sqlml.transaction import transaction

_ML_CALL = re.compile(r"\bml_\w+\s*\(", re.IGNORECASE)
log = logging.getLogger("sqlml.query")


@dataclass
class StatementContext:
    """What a statement handler gets: the connection, its statement, and where it sits."""

    connection: Any  # sqlml.Connection
    key: str  # the statement key, e.g. "CREATE MODEL"
    text: str  # this statement's text
    script: str  # the whole text it came from
    offset: int  # where the statement starts in the script

    @property
    def duck(self):
        return self.connection.duckdb

    @property
    def session(self):
        return self.connection.session

    def parser(self) -> StatementParser:
        return StatementParser(self.text, base=self.script, offset=self.offset)


def resolve_handler(key: str):
    target = STATEMENTS[key]
    if callable(target):
        return target
    module_name, _, function = target.partition(":")
    return getattr(importlib.import_module(module_name), function)


def _materialize(connection, statement: str) -> str:
    """The statement after the table functions it calls are computed (``MATERIALIZED_FUNCTIONS``)."""
    lowered = statement.lower()
    for name, target in MATERIALIZED_FUNCTIONS.items():
        if name in lowered and re.search(rf"\b{re.escape(name)}\s*\(", lowered):
            if not callable(target):
                module_name, _, function = target.partition(":")
                target = getattr(importlib.import_module(module_name), function)
            with connection.session.translate_errors():
                statement = target(connection, statement)
            lowered = statement.lower()
    return statement


def run_script(connection, text: str, params: Any = None, *, mode: str = "sql", frame=None):
    """Run every statement of ``text``; return what the last one gives.

    ``mode='sql'``: a Relation for a query, None for other statements.
    ``mode='execute'``: ("duck", None) when the result waits in the DuckDB connection,
    or ("relation", Relation|None) for an sqlml statement's result.
    ``frame``: the caller's Python frame, whose DataFrames the SQL may name (sqlml.frames).
    ``params`` belong to the last statement; an sqlml statement gets them as literals.
    """
    verdict = plain_verdict(text)
    if verdict is not None:
        rows, names = verdict
        if frame is not None and not frames.binds_any(frame, names):
            frame = None  # nothing the text names lives in the caller's frame: no replacement scan to serve
        return _plain(connection, text, params, mode, frame, rows=rows)
    duck = connection.duckdb
    session = connection.session
    spans = split_statements(text)
    result: Any = None if mode == "sql" else ("duck", None)
    shared: dict[int, str] = {}  # statements whose model calls were planned together
    for i, (start, end) in enumerate(spans):
        statement = text[start:end].strip()
        lead = len(text[start:end]) - len(text[start:end].lstrip())
        tokens = tokenize(statement)
        last = i == len(spans) - 1
        if params is not None and not last and parameters.placeholders(tokens):
            raise ParameterError(
                "params", "params belong to the last statement of a script; run the statement with placeholders on its own"
            )
        key = match_statement(tokens)
        if key is not None:
            if connection.read_only and key not in READ_ONLY:
                raise ReadOnlyError(key)
            script, offset = text, start + lead
            if (last and params is not None) or parameters.placeholders(tokens):
                # the handler reads the statement with each placeholder a literal (sqlml.query.params)
                statement = parameters.bind(statement, params if last else None, key)
                tokens = tokenize(statement)
                script, offset = statement, 0
            ctx = StatementContext(connection, key, statement, script, offset)
            handler = resolve_handler(key)
            began = time.perf_counter()
            log.info("%s: started", key)
            with session.translate_errors(), frames.registered_from_frame(duck, frame, tokens):
                try:
                    if key in READ_ONLY:
                        value = handler(ctx)
                    else:
                        with transaction(duck):
                            value = handler(ctx)
                except BaseException as error:
                    log.info("%s: failed after %.3f s: %s", key, time.perf_counter() - began, error)
                    raise
            log.info("%s: done in %.3f s", key, time.perf_counter() - began)
            result = value if mode == "sql" else ("relation", value)
            continue
        extra: dict[str, Any] = {}
        if _ML_CALL.search(statement):
            statement, extra = source_calls.prepare(connection, statement, frame)
            with frames.registered_from_frame(duck, frame, tokens):
                statement = _materialize(connection, statement)
                if len(spans) > 1 and not shared:
                    from sqlml.query.batch import share_script

                    shared = share_script(connection, text, spans, i)
                statement = shared.pop(i, "") or connection.optimize(statement)
        result = _plain(connection, statement, params if last else None, mode, frame, extra)
    return result


def _plain(connection, text, params, mode, frame=None, extra=None, rows=None):
    """Plain SQL straight to DuckDB (the hot path of point queries: keep it lean).

    It is called from the caller's frame (``frames.call_in_frame``), so DuckDB's
    replacement scans find the caller's DataFrames; ``extra`` adds names to that scope.
    ``rows``: whether the text returns rows, when already known.
    """
    duck = connection.duckdb
    try:
        if mode == "execute":
            frames.call_in_frame(frame, duck.execute, text, params, extra=extra)
            return ("duck", None)
        relation = frames.call_in_frame(frame, duck.sql, text, params=params, extra=extra)
    except duckdb.Error as error:
        connection.session.reraise(error)
    if rows if rows is not None else returns_rows(text):
        return Relation(relation, connection.session)
    return None
