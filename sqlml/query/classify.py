"""What a statement is: an sqlml statement (which key of ``STATEMENTS``), a query that
returns rows, or plain SQL that DuckDB takes untouched. Cheap tests on text and tokens,
shared by the router and by statements that run together (``sqlml.query.batch``).
"""

from __future__ import annotations

import re
from functools import lru_cache

from sqlml.query.statements import STATEMENTS
from sqlml.query.tokens import Token, tokenize


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
    """The STATEMENTS key whose words lead the statement (``CREATE OR REPLACE`` folded)."""
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


def _last_statement_tokens(tokens: list[Token]) -> list[Token]:
    for i in range(len(tokens) - 1, -1, -1):
        if tokens[i].kind == "operator" and tokens[i].text == ";":
            rest = tokens[i + 1 :]
            if rest:
                return rest
    return tokens
