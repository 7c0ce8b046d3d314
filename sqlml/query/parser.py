"""A small recursive-descent reader for sqlml statements.

sqlml statements are pre-parsed here rather than by a sqlglot dialect: a Python subclass
of sqlglot's parser fails when the compiled ``sqlglotc`` is installed ("interpreted
classes cannot inherit from compiled"; see ARCHITECTURE.md). Handlers read their
statement word by word:

    p = StatementParser(text)
    p.expect("CREATE"); replace = p.accept("OR", "REPLACE"); p.expect("MODEL")
    name = p.identifier("model name")
    options = p.options() if p.accept("WITH") else {}
    p.expect("AS"); query = p.rest("a SELECT query")

Every failure is an ``SqlmlSyntaxError`` with line, column and a caret under the
offending token, measured in the text the user wrote.
"""

from __future__ import annotations

from typing import Any, NoReturn

from sqlml.errors import SqlmlSyntaxError
from sqlml.query.tokens import Token, tokenize

_WORD_LITERALS = {"TRUE": True, "FALSE": False, "NULL": None}


class StatementParser:
    def __init__(self, sql: str, *, base: str | None = None, offset: int = 0):
        """Read ``sql``; errors point into ``base`` (the whole script) at ``offset``."""
        self.sql = sql
        self.base = base if base is not None else sql
        self.offset = offset
        self.tokens: list[Token] = tokenize(sql)
        self.pos = 0

    # -- looking -------------------------------------------------------------
    @property
    def current(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def peek(self, k: int = 0) -> Token | None:
        i = self.pos + k
        return self.tokens[i] if i < len(self.tokens) else None

    def at_end(self) -> bool:
        return self.pos >= len(self.tokens)

    def at(self, *words: str) -> bool:
        """Whether the next tokens are exactly these bare words (or operators)."""
        for k, word in enumerate(words):
            tok = self.peek(k)
            if tok is None:
                return False
            if tok.word != word.upper() and not (tok.kind == "operator" and tok.text == word):
                return False
        return True

    # -- consuming -----------------------------------------------------------
    def accept(self, *words: str) -> bool:
        if self.at(*words):
            self.pos += len(words)
            return True
        return False

    def expect(self, *words: str) -> None:
        for word in words:
            if not self.accept(word):
                self.error(f"expected {word}")

    def identifier(self, what: str = "a name") -> str:
        tok = self.current
        if tok is None or tok.kind not in ("identifier", "keyword"):
            self.error(f"expected {what}")
        self.pos += 1
        return tok.name

    def qualified_name(self, what: str = "a name") -> list[str]:
        """``a``, ``a.b`` or ``a.b.c`` as a list of parts."""
        parts = [self.identifier(what)]
        while self.accept("."):
            parts.append(self.identifier(what))
        return parts

    def rest(self, what: str = "more text") -> str:
        """The raw text from the current token to the end (the user's SQL, untouched)."""
        tok = self.current
        if tok is None:
            self.error(f"expected {what}")
        self.pos = len(self.tokens)
        return self.sql[tok.start :].strip()

    def until(self, *words: str, what: str = "an expression") -> str:
        """Raw text up to (not including) the first top-level occurrence of ``words``."""
        start_tok = self.current
        if start_tok is None:
            self.error(f"expected {what}")
        depth = 0
        while self.current is not None:
            tok = self.current
            if tok.kind == "operator" and tok.text in ("(", "[", "{"):
                depth += 1
            elif tok.kind == "operator" and tok.text in (")", "]", "}"):
                depth -= 1
            elif depth == 0 and self.at(*words):
                break
            self.pos += 1
        end = self.current.start if self.current is not None else len(self.sql)
        text = self.sql[start_tok.start : end].strip()
        if not text:
            self.error(f"expected {what}")
        return text

    def end(self) -> None:
        if not self.at_end():
            self.error("unexpected text at the end of the statement")

    # -- literals and option lists -----------------------------------------------
    def options(self) -> dict[str, Any]:
        """``(key := value, key = value, ...)`` with literal values; keys lower-cased."""
        self.expect("(")
        opts: dict[str, Any] = {}
        if self.accept(")"):
            return opts
        while True:
            key_tok = self.current
            key = self.identifier("an option name").lower()
            if key in opts:
                self.error(f"option {key!r} given twice", key_tok)
            if not (self.accept(":=") or self.accept("=")):
                self.error("expected := after the option name")
            opts[key] = self.literal()
            if self.accept(")"):
                return opts
            self.expect(",")

    def literal(self) -> Any:
        """A number, string, TRUE/FALSE/NULL, bare word, ``[list]`` or ``{'struct': ...}``."""
        tok = self.current
        if tok is None:
            self.error("expected a value")
        if tok.kind == "operator" and tok.text == "-":
            self.pos += 1
            value = self.literal()
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                self.error("expected a number after -", tok)
            return -value
        if tok.kind == "number":
            self.pos += 1
            text = tok.text.replace("_", "")
            try:
                return int(text)
            except ValueError:
                return float(text)
        if tok.kind == "string":
            self.pos += 1
            return _unquote_string(tok.text)
        if tok.kind == "operator" and tok.text == "[":
            self.pos += 1
            items: list[Any] = []
            if self.accept("]"):
                return items
            while True:
                items.append(self.literal())
                if self.accept("]"):
                    return items
                self.expect(",")
        if tok.kind == "operator" and tok.text == "{":
            self.pos += 1
            struct: dict[str, Any] = {}
            if self.accept("}"):
                return struct
            while True:
                key = self.literal()
                self.expect(":")
                struct[str(key)] = self.literal()
                if self.accept("}"):
                    return struct
                self.expect(",")
        if tok.kind in ("identifier", "keyword"):
            self.pos += 1
            if tok.word in _WORD_LITERALS:
                return _WORD_LITERALS[tok.word]
            return tok.name
        self.error("expected a value")

    # -- errors ------------------------------------------------------------------
    def error(self, message: str, token: Token | None = None) -> NoReturn:
        tok = token or self.current
        if tok is None:
            where, length = len(self.sql.rstrip()), 1
            message += ", found the end of the statement"
        else:
            where, length = tok.start, len(tok.text)
            message += f", found {tok.text!r}"
        raise SqlmlSyntaxError(message, self.base, self.offset + where, length)


def _unquote_string(text: str) -> str:
    if text.startswith("$"):
        tag_end = text.index("$", 1) + 1
        return text[tag_end : len(text) - tag_end]
    if text[:1] in ("E", "e"):
        text = text[1:]
    return text[1:-1].replace("''", "'")
