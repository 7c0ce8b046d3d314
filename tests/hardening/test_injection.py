"""Issue 15, row 1: no SQL runs from a query-text argument but one read-only query.

Every entry point that takes query text gets the issue's payloads; each must answer with
a typed error naming the argument, run nothing (``victim`` survives) and change nothing.
"""

from __future__ import annotations

import pytest

from sqlml.errors import InvalidOptionError, SqlmlError
from sqlml.sqlutil import quote_literal

from .conftest import catalog_snapshot, victim_intact

PAYLOADS = [
    "SELECT * FROM tr); DROP TABLE victim; SELECT (1",  # the payload
    "SELECT * FROM tr; DROP TABLE victim",
    "SELECT * FROM tr) AS q; DROP TABLE victim; --",
    "(SELECT * FROM tr); DROP TABLE victim",
    "WITH q AS (SELECT 1) DELETE FROM victim",
    "FROM tr; UPDATE victim SET a = 0",
    "SELECT * FROM tr); INSERT INTO victim VALUES (1); SELECT (1",
]

#: every function and statement taking query text: a template with {q} (a SQL string literal) and the argument named in the error
ENTRY_POINTS = {
    "ml_validate source": ("SELECT * FROM ml_validate({q}, 's1')", "source"),
    "ml_validate baseline": ("SELECT * FROM ml_validate('tr', 's1', baseline := {q})", "baseline"),
    "ml_drift source": ("SELECT * FROM ml_drift({q}, 'tr')", "source"),
    "ml_drift baseline": ("SELECT * FROM ml_drift('tr', {q})", "baseline"),
    "ml_statistics": ("SELECT * FROM ml_statistics({q})", "source"),
    "ml_evaluate": ("SELECT * FROM ml_evaluate('m1', {q})", "query"),
    "ml_memory_estimate": ("SELECT * FROM ml_memory_estimate({q}, 'label := ''label''')", "query"),
    "CREATE DATA SCHEMA": ("CREATE DATA SCHEMA s2 FROM {q}", "source"),
    "ALTER DATA SCHEMA ACCEPT": ("ALTER DATA SCHEMA s1 ACCEPT {q}", "source"),
    "CREATE MODEL validation_query": ("CREATE MODEL m2 WITH (epochs := 1, validation_query := {q}) AS SELECT x, y, label FROM tr", "validation_query"),
    "CREATE MODELS grid": ("CREATE MODELS g FOR (lr IN (0.01)) WITH (epochs := 1, workers := 1, validation_query := {q}) AS SELECT x, y, label FROM tr", "validation_query"),
}


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_payload_runs_nothing_and_is_a_typed_error(shared_world, entry, payload):
    world = shared_world
    template, argument = ENTRY_POINTS[entry]
    before = catalog_snapshot(world)
    with pytest.raises(SqlmlError) as info:
        result = world.sql(template.format(q=quote_literal(payload)))
        if result is not None:
            result.fetchall()
    assert victim_intact(world)
    assert isinstance(info.value, InvalidOptionError), f"{type(info.value).__name__}: {info.value}"
    assert info.value.option == argument, str(info.value)
    assert "IndexError" not in str(info.value)
    assert catalog_snapshot(world) == before


def test_ml_lf_summary_names_are_never_sql(world):
    """The labeling macros take table names through query_table(): a payload is just a name."""
    world.sql("APPLY LABELING FUNCTIONS ON c KEY id")
    for payload in PAYLOADS[:2]:
        with pytest.raises(SqlmlError):
            world.sql(f"SELECT * FROM ml_lf_summary({quote_literal(payload)})").fetchall()
        with pytest.raises(SqlmlError):
            world.sql(f"SELECT * FROM ml_lf_summary('c', gold := {quote_literal(payload)})").fetchall()
    assert victim_intact(world)


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT count(*) FROM ml_validate('SELECT * FROM tr WHERE id < 100', 's1')",
        "SELECT count(*) FROM ml_drift('SELECT * FROM tr WHERE id < 100', 'SELECT * FROM tr WHERE id >= 100')",
        "SELECT count(*) FROM ml_statistics('FROM tr -- a trailing comment', store := false)",
        "SELECT rows FROM ml_evaluate('m1', 'SELECT x, y, label FROM tr;')",
        "SELECT count(*) FROM ml_memory_estimate('SELECT x, y, label FROM tr', 'hidden := [4]')",
    ],
)
def test_one_query_still_works_everywhere(world, statement):
    assert world.sql(statement).fetchall()[0][0] >= 0
    world.sql("CREATE DATA SCHEMA s3 FROM 'SELECT * FROM tr WHERE id < 150 -- comment'")
    world.sql("ALTER DATA SCHEMA s3 ACCEPT 'WITH q AS (SELECT * FROM tr) SELECT * FROM q'")
    assert victim_intact(world)
