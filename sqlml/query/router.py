"""Run a script: sqlml statements go to their handlers, everything else to DuckDB.

The fast path: text with none of the words that can start an sqlml statement and no
``ml_`` call goes to DuckDB unparsed (a regular expression costs about a microsecond).
Otherwise the script is split at top-level semicolons; each statement is matched
against ``STATEMENTS`` by its leading words, and plain statements that call ``ml_``
functions pass through the optimizer rules first.
"""

from __future__ import annotations

import importlib
import re

import duckdb
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlml.errors import ReadOnlyError
from sqlml.query.parser import StatementParser
from sqlml.query.statements import READ_ONLY, STATEMENTS
from sqlml.query.tokens import Token, split_statements, tokenize
from sqlml.transaction import transaction

_ML_CALL = re.compile(r"\bml_\w+\s*\(", re.IGNORECASE)


@lru_cache(maxsize=8)
def _compiled(keys: tuple[str, ...]):
    """The fast-path pattern and the match order for a set of statement keys."""
    second_words = sorted({k.split()[1] for k in keys})
    fast = re.compile(r"\b(?:" + "|".join(second_words) + r")\b|\bml_\w+\s*\(", re.IGNORECASE)
    ordered = sorted(((tuple(k.split()), k) for k in keys), key=lambda kv: -len(kv[0]))
    # Substrings any match must contain: a plain `in` test rules most queries out in well
    # under a microsecond, before the (case-insensitive, word-bounded) pattern runs.
    hints = tuple(sorted({w.lower() for w in second_words} | {"ml_"}))
    return fast, ordered, hints
QUERY_WORDS = frozenset(
    "SELECT WITH FROM VALUES TABLE SHOW DESCRIBE SUMMARIZE PRAGMA EXPLAIN CALL PIVOT UNPIVOT".split()
)


def needs_front_end(text: str) -> bool:
    """False when the text can go to DuckDB untouched (no sqlml word, no ml_ call)."""
    fast, _, hints = _compiled(tuple(STATEMENTS))
    lowered = text.lower()
    if not any(hint in lowered for hint in hints):
        return False
    return fast.search(text) is not None


def match_statement(tokens: list[Token]) -> str | None:
    """The registry key whose words lead the statement (``CREATE OR REPLACE`` folded)."""
    words = [t.word for t in tokens[:6]]
    if words[:3] == ["CREATE", "OR", "REPLACE"]:
        words = ["CREATE", *words[3:]]
    for key_words, key in _compiled(tuple(STATEMENTS))[1]:
        if tuple(words[: len(key_words)]) == key_words:
            return key
    return None


_FIRST_WORD = re.compile(r"\s*(?:(?:--[^\n]*(?:\n|$)|/\*.*?\*/)\s*)*(\(|\w+)", re.DOTALL)


def returns_rows(text: str) -> bool:
    """Whether plain SQL ``text`` (its last statement) returns rows; cheap for one statement."""
    if ";" not in text:
        match = _FIRST_WORD.match(text)
        if match is not None and "returning" not in text.lower():
            word = match.group(1)
            return word == "(" or word.upper() in QUERY_WORDS
    return is_query(_last_statement_tokens(tokenize(text)))


def is_query(tokens: list[Token]) -> bool:
    """Whether a plain statement returns rows (a relation) rather than a status."""
    if not tokens:
        return False
    first = tokens[0]
    if first.kind == "operator" and first.text == "(":
        return True
    if first.word in QUERY_WORDS:
        return True
    return any(t.word == "RETURNING" for t in tokens)


@dataclass
class StatementContext:
    """What a statement handler gets: the connection, its statement, and where it sits."""

    connection: Any  # sqlml.Connection
    key: str  # the registry key, e.g. "CREATE MODEL"
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


def run_script(connection, text: str, params: Any = None, *, mode: str = "sql"):
    """Run every statement of ``text``; return what the last one gives.

    ``mode='sql'``: a Relation for a query, None for other statements.
    ``mode='execute'``: ("duck", None) when the result waits in the DuckDB connection,
    or ("relation", Relation|None) for an sqlml statement's result.
    """
    duck = connection.duckdb
    session = connection.session
    if not needs_front_end(text):
        return _plain(connection, text, params, mode)
    spans = split_statements(text)
    result: Any = None if mode == "sql" else ("duck", None)
    shared: dict[int, str] = {}  # statements whose model calls were planned together
    for i, (start, end) in enumerate(spans):
        statement = text[start:end].strip()
        lead = len(text[start:end]) - len(text[start:end].lstrip())
        tokens = tokenize(statement)
        last = i == len(spans) - 1
        key = match_statement(tokens)
        if key is not None:
            if connection.read_only and key not in READ_ONLY:
                raise ReadOnlyError(key)
            ctx = StatementContext(connection, key, statement, text, start + lead)
            handler = resolve_handler(key)
            with session.translate_errors():
                if key in READ_ONLY:
                    value = handler(ctx)
                else:
                    with transaction(duck):
                        value = handler(ctx)
            result = value if mode == "sql" else ("relation", value)
            continue
        if _ML_CALL.search(statement):
            if "ml_label_model_predict" in statement.lower():  # a table function computed first
                from sqlml.labeling.predict import materialize

                with session.translate_errors():
                    statement = materialize(connection, statement)
            if len(spans) > 1 and not shared:
                from sqlml.serving.mqo import share_script

                shared = share_script(connection, text, spans, i)
            statement = shared.pop(i, None) or connection.optimize(statement)
        result = _plain(connection, statement, params if last else None, mode)
    return result


def _plain(connection, text, params, mode):
    """Plain SQL straight to DuckDB (the hot path of point queries: keep it lean)."""
    duck = connection.duckdb
    try:
        if mode == "execute":
            duck.execute(text, params)
            return ("duck", None)
        relation = duck.sql(text, params=params)
    except duckdb.Error as error:
        connection.session.reraise(error)
    if returns_rows(text):
        return connection.wrap(relation)
    return None


def _last_statement_tokens(tokens: list[Token]) -> list[Token]:
    for i in range(len(tokens) - 1, -1, -1):
        if tokens[i].kind == "operator" and tokens[i].text == ";":
            rest = tokens[i + 1 :]
            if rest:
                return rest
    return tokens
