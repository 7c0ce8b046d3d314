"""What can be validated: a table or view name, a query, or a data file path.

``'flights'``, ``'main.flights'``, ``'SELECT * FROM flights WHERE month = 2'`` and
``'batch_07.csv'`` all name a source. Names are quoted, never pasted; a query is the
user's own SQL and runs as a subquery; a file path becomes a string literal that
DuckDB's replacement scan reads (CSV, Parquet, JSON).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import duckdb

from sqlml.errors import DataError
from sqlml.query.tokens import tokenize
from sqlml.sqlutil import is_query_text, quote_ident, quote_literal, relation_sql, split_name, table_ref
from sqlml.validation.kinds import kind_of

WHERE = "data validation"  # where a bad source is reported: "data validation: option 'baseline': ..."
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_FILE = re.compile(r"(\.(csv|tsv|txt|parquet|json|ndjson|jsonl)(\.gz|\.zst)?$)|[/*\\]", re.IGNORECASE)


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str

    @property
    def kind(self) -> str:
        return kind_of(self.data_type)


@dataclass(frozen=True)
class Source:
    text: str  # what the user wrote
    sql: str  # the FROM clause item: "t", "(SELECT ...)", or 'file.csv'
    columns: tuple[Column, ...]

    @property
    def label(self) -> str:
        """A short name for messages and the statistics store."""
        return " ".join(self.text.split())

    def column(self, name: str) -> Column | None:
        for c in self.columns:
            if c.name == name:
                return c
        return None


def from_clause(text: str, *, argument: str = "source", where: str = WHERE) -> str:
    """The FROM item for a table name, a query, or a file path.

    A query must be exactly one read-only statement (``sqlutil.select_query``): text such
    as ``SELECT * FROM t); DROP TABLE victim; SELECT (1`` is an ``InvalidOptionError``
    naming ``argument``, never three statements.
    """
    if not isinstance(text, str) or not text.strip():
        raise DataError("a data source is needed: a table name, a query, or a file path")
    text = text.strip()
    if is_query_text(text):
        return relation_sql(text, argument=argument, where=where)
    if _FILE.search(text) and not text.startswith('"'):
        return quote_literal(text)
    try:
        return table_ref(text)
    except ValueError:
        raise DataError(f"{text!r} is neither a table name, a query, nor a file path") from None


def dataset_key(text: str) -> str:
    """The name statistics are stored under: a table name as written unquoted where it can be."""
    text = " ".join(text.strip().split())
    if is_query_text(text) or (_FILE.search(text) and not text.startswith('"')):
        return text
    try:
        parts = split_name(text)
    except ValueError:
        return text
    return name_text(parts)


def name_text(parts: list[str]) -> str:
    """A dotted name, quoting only the parts that need it: ``main.flights``, ``"odd name"``, ``"select"``."""
    return ".".join(p if _bare(p) else quote_ident(p) for p in parts)


def _bare(part: str) -> bool:
    if not _PLAIN.match(part):
        return False
    tokens = tokenize(part)
    return len(tokens) == 1 and tokens[0].kind == "identifier"


def resolve(duck: duckdb.DuckDBPyConnection, text: str, *, argument: str = "source", where: str = WHERE) -> Source:
    """Bind the source once (no rows read) and learn its columns and types."""
    sql = from_clause(text, argument=argument, where=where)
    try:
        rows = duck.execute(f"DESCRIBE SELECT * FROM {sql} AS __src").fetchall()
    except duckdb.Error as error:
        raise DataError(f"cannot read data source {text.strip()!r}: {_first_line(error)}", obj=text) from None
    return Source(text=text, sql=sql, columns=tuple(Column(r[0], r[1]) for r in rows))


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
