"""The pure-SQL ``ml_*`` macros of ``sql/macros/*.sql``.

The files are written for a plain DuckDB shell (``CREATE OR REPLACE MACRO``, persistent,
loaded there through ``sql/install.sql``). An sqlml connection creates the same macros
as TEMP macros instead, so opening a database never writes to it.
"""

from __future__ import annotations

from sqlml import resources
from sqlml.query.tokens import split_statements, tokenize


def macro_statements() -> list[str]:
    """Every statement of the macro files, as written (``CREATE OR REPLACE MACRO ...``)."""
    statements = []
    for path in resources.sql_files("macros"):
        text = path.read_text()
        for start, end in split_statements(text):
            statements.append(text[start:end].strip())
    return statements


def as_temp(statement: str) -> str:
    """``CREATE OR REPLACE MACRO x`` -> ``CREATE OR REPLACE TEMP MACRO x``."""
    tokens = tokenize(statement)
    words = [t.word for t in tokens[:4]]
    if words != ["CREATE", "OR", "REPLACE", "MACRO"]:
        raise ValueError(f"sql/macros holds only CREATE OR REPLACE MACRO statements, not: {statement[:60]!r}")
    at = tokens[3].start
    return statement[:at] + "TEMP " + statement[at:]


def create_sql_macros(duck, *, strict: bool = True) -> list[str]:
    """Create the macros as TEMP macros on ``duck``; returns the ones that failed (non-strict)."""
    failed = []
    for statement in macro_statements():
        try:
            duck.execute(as_temp(statement))
        except Exception:
            if strict:
                raise
            failed.append(statement.split("(", 1)[0])
    return failed
