"""What a statement is: an sqlml statement (which key of ``STATEMENTS``), a query that
returns rows, or plain SQL that DuckDB takes untouched. Cheap tests on text and tokens,
shared by the router and by statements that run together (``sqlml.query.batch``).
"""

from __future__ import annotations

import re

from sqlml.query.statements import STATEMENTS
from sqlml.query.tokens import Token, tokenize


class _Table:
    """What classification derives from one state of ``STATEMENTS``."""

    __slots__ = ("fast", "ordered", "hints", "plain")

    def __init__(self, keys: tuple[str, ...]):
        second_words = sorted({k.split()[1] for k in keys})
        self.fast = re.compile(r"\b(?:" + "|".join(second_words) + r")\b|\bml_\w+\s*\(", re.IGNORECASE)
        self.ordered = sorted(((tuple(k.split()), k) for k in keys), key=lambda kv: -len(kv[0]))
        # Substrings any match must contain: a plain `in` test rules most queries out in well
        # under a microsecond, before the (case-insensitive, word-bounded) pattern runs.
        self.hints = tuple(sorted({w.lower() for w in second_words} | {"ml_"}))
        #: text DuckDB takes untouched -> (returns rows, words); point queries repeat their text
        self.plain: dict[str, tuple[bool, frozenset[str]]] = {}


_state: tuple[tuple[str, ...], _Table] | None = None

#: Texts longer than this are classified each time (their query costs far more anyway).
PLAIN_TEXT_LIMIT = 4096
#: Verdicts kept per state of the statement table (dropped all at once when full).
PLAIN_ENTRIES = 1024


def _table() -> _Table:
    """The table for the current ``STATEMENTS``, rebuilt whenever its keys change.

    The keys are compared in full on every call (about 0.3 us for the built-in table):
    a statement added by a plugin or a test must reach the front end even for a text
    whose verdict was cached before it existed.
    """
    global _state
    keys = tuple(STATEMENTS)
    state = _state
    if state is None or state[0] != keys:
        state = _state = (keys, _Table(keys))
    return state[1]


QUERY_WORDS = frozenset(
    "SELECT WITH FROM VALUES TABLE SHOW DESCRIBE SUMMARIZE PRAGMA EXPLAIN CALL PIVOT UNPIVOT".split()
)


def needs_front_end(text: str) -> bool:
    """False when the text can go to DuckDB untouched (no sqlml word, no ml_ call)."""
    table = _table()
    if text in table.plain:
        return False
    return _needs_front_end(text, table)


def _needs_front_end(text: str, table: _Table) -> bool:
    lowered = text.lower()
    if not any(hint in lowered for hint in table.hints):
        return False
    return table.fast.search(text) is not None


_NAME = re.compile(r"[^\W\d]\w*")


def plain_verdict(text: str) -> tuple[bool, frozenset[str]] | None:
    """None when ``text`` needs the front end; else (whether it returns rows, the words it names).

    The words are what a replacement scan could look up in the caller's frame
    (``sqlml.frames.binds_any``). The hot path of point queries: a repeated text is one
    dictionary lookup."""
    table = _table()
    verdict = table.plain.get(text)
    if verdict is None:
        if _needs_front_end(text, table):
            return None
        verdict = (returns_rows(text), frozenset(_NAME.findall(text)))
        if len(text) <= PLAIN_TEXT_LIMIT:
            if len(table.plain) >= PLAIN_ENTRIES:
                table.plain.clear()
            table.plain[text] = verdict
    return verdict


def match_statement(tokens: list[Token]) -> str | None:
    """The STATEMENTS key whose words lead the statement (``CREATE OR REPLACE`` folded)."""
    words = [t.word for t in tokens[:6]]
    if words[:3] == ["CREATE", "OR", "REPLACE"]:
        words = ["CREATE", *words[3:]]
    for key_words, key in _table().ordered:
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


def _last_statement_tokens(tokens: list[Token]) -> list[Token]:
    for i in range(len(tokens) - 1, -1, -1):
        if tokens[i].kind == "operator" and tokens[i].text == ";":
            rest = tokens[i + 1 :]
            if rest:
                return rest
    return tokens
