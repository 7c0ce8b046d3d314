"""Tokens of an SQL text, from DuckDB's own tokenizer (C++, about a microsecond a query).

DuckDB's tokenizer knows its strings, quoted identifiers, dollar quotes and comments,
so splitting a script at ``;`` and reading a statement's leading words never trips on
a semicolon or keyword inside a string.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

_KIND = {
    "keyword": "keyword",
    "identifier": "identifier",
    "numeric_const": "number",
    "string_const": "string",
    "operator": "operator",
    "comment": "comment",
}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # keyword | identifier | number | string | operator | comment
    text: str
    start: int  # offset into the full SQL text

    @property
    def end(self) -> int:
        return self.start + len(self.text)

    @property
    def quoted(self) -> bool:
        return self.kind == "identifier" and self.text.startswith('"')

    @property
    def word(self) -> str | None:
        """Upper-cased bare word, or None for quoted identifiers, literals and operators."""
        if self.kind in ("keyword", "identifier") and not self.quoted:
            return self.text.upper()
        return None

    @property
    def name(self) -> str:
        """The identifier this token names: quotes removed (and ``""`` unescaped), case kept."""
        if self.quoted:
            return self.text[1:-1].replace('""', '"')
        return self.text


def tokenize(sql: str, *, comments: bool = False) -> list[Token]:
    """All tokens of ``sql``; comments dropped unless asked for."""
    raw = duckdb.tokenize(sql)
    if not sql.isascii():  # DuckDB reports UTF-8 byte offsets; we index characters
        char_at = _byte_to_char(sql)
        raw = [(char_at[start], kind) for start, kind in raw]
    tokens = []
    for i, (start, kind) in enumerate(raw):
        end = raw[i + 1][0] if i + 1 < len(raw) else len(sql)
        kind_name = _KIND.get(kind.name, kind.name)
        if kind_name == "comment" and not comments:
            continue
        text = sql[start:end].rstrip()
        if kind_name == "comment":
            # a trailing comment token swallows nothing but itself; keep its text only
            text = text.split("\n", 1)[0] if text.startswith("--") else text
        tokens.append(Token(kind_name, text, start))
    return tokens


def _byte_to_char(text: str) -> dict[int, int]:
    offsets, position = {}, 0
    for index, char in enumerate(text):
        offsets[position] = index
        position += len(char.encode("utf-8"))
    offsets[position] = len(text)
    return offsets


def split_statements(sql: str) -> list[tuple[int, int]]:
    """(start, end) offsets of each non-empty statement of a script, split at top-level ``;``."""
    spans = []
    start = 0
    for token in tokenize(sql):
        if token.kind == "operator" and token.text == ";":
            spans.append((start, token.start))
            start = token.end
    spans.append((start, len(sql)))
    return [(a, b) for a, b in spans if sql[a:b].strip() and _has_code(sql[a:b])]


def _has_code(text: str) -> bool:
    return any(t.kind != "comment" for t in tokenize(text, comments=True))
