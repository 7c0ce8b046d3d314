"""Issue 15's fuzz suite: whatever the text, a typed sqlml error or success; on error, nothing changed.

Property-based (hypothesis) over four surfaces: query-text arguments, statement text,
option values and object names. Each example checks that the outcome is success or an
``SqlmlError`` (never a raw DuckDB, Python or torch exception), that ``victim`` survives,
and that a failed statement left every catalog and user table as it was (training's
resumable checkpoints and run rows excepted, as documented).

Bounded: the examples of the default run take well under a minute; ``make test-all``
runs ten times as many (SQLML_FUZZ=all). Derandomized (see conftest), so CI cannot flake.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given, strategies as st

from sqlml.errors import InvalidOptionError, SqlmlError, UnknownObjectError
from sqlml.sqlutil import quote_ident, quote_literal

from .conftest import catalog_snapshot, victim_intact

# -- the outcome every example must have ------------------------------------------------------


def run_checked(con, sql: str, params=None) -> None:
    """Run ``sql``; success, or an SqlmlError that changed nothing."""
    before = catalog_snapshot(con)
    try:
        result = con.sql(sql, params=params)
        if result is not None:
            result.fetchall()
    except SqlmlError:
        assert catalog_snapshot(con) == before, f"a failed statement changed the catalog: {sql!r}"
    assert victim_intact(con), sql


# -- query-text arguments -----------------------------------------------------------------------

QUERY_BITS = [
    "SELECT", "*", "FROM", "tr", "victim", ")", "(", ";", "DROP TABLE victim", "--", "/*", "*/", "'", '"', "WHERE",
    "id > 3", "UNION ALL", "DELETE FROM victim", "INSERT INTO victim VALUES (1)", "x", ",", "WITH q AS", "AS", "\x00",
    "\n", "COPY victim TO 'x.csv'", "ATTACH ':memory:' AS a", "PRAGMA version", "CALL pragma_version()", "VALUES (1)",
    "SELECT (1", "tr.x", "main.tr", "LIMIT 5", "ORDER BY 1", "query('DROP TABLE victim')", "$$", "?",
]
query_text = st.one_of(
    st.lists(st.sampled_from(QUERY_BITS), max_size=12).map(" ".join),
    st.text(max_size=60),
)
QUERY_ENTRY_POINTS = [
    "SELECT * FROM ml_validate(?, 's1')",
    "SELECT * FROM ml_validate('tr', 's1', baseline := ?)",
    "SELECT * FROM ml_drift(?, 'tr')",
    "SELECT * FROM ml_statistics(?, store := false)",
    "SELECT * FROM ml_evaluate('m1', ?)",
]


@given(text=query_text, entry=st.sampled_from(QUERY_ENTRY_POINTS))
@example(text="SELECT * FROM tr); DROP TABLE victim; SELECT (1", entry=QUERY_ENTRY_POINTS[0])
def test_query_arguments(shared_world, text, entry):
    run_checked(shared_world, entry, params=[text])


@given(text=query_text, statement=st.sampled_from(["CREATE DATA SCHEMA fuzzed FROM {q}", "ALTER DATA SCHEMA s1 ACCEPT {q}"]))
def test_query_arguments_of_statements(world, text, statement):
    run_checked(world, statement.format(q=quote_literal(text)))
    world.sql("DROP DATA SCHEMA IF EXISTS fuzzed")


# -- statement text -------------------------------------------------------------------------------

HEADS = [
    "CREATE MODEL", "CREATE OR REPLACE MODEL", "DROP MODEL", "CREATE LABELING FUNCTION", "DROP LABELING FUNCTION",
    "APPLY LABELING FUNCTIONS ON", "CREATE LABEL MODEL", "DROP LABEL MODEL", "CREATE DATA SCHEMA", "ALTER DATA SCHEMA",
    "DROP DATA SCHEMA", "EXPLAIN ML",
]
WORDS = [
    "fz", "m1", "s1", "c", "tr", "victim", '""', '"a.b"', '"x\x00"', "ON", "WITH", "AS", "FROM", "KEY", "id", "GOLD", "ACCEPT",
    "SET", "COLUMN", "x", "ADD", "STATISTICS", "CHECK", "DROP", "IF", "EXISTS", "NOT", "VERSION", "(", ")", ",", ":=", "[", "]",
    "'", "epochs := 1", "epochs := -5", "lr := 1e999", "threads := 100000", "hidden := [4]", "min := 10", "max := 1",
    "classes := ['p', 'q']", "method := 'dawid_skene'", "strategy := 'spill'", "device_memory := '1KB'", "1", "-5", "1e999",
    "0.5", "'x'", "true", "NULL", "[1, 2]", "SELECT x, label FROM tr", "SELECT x, y, label FROM tr LIMIT 20",
    "CASE WHEN id > 3 THEN 'p' END", "x > 0", "count(*) > 1", "'SELECT * FROM tr); DROP TABLE victim; SELECT (1'",
]  # no ';' outside strings: a script's statements are the user's own, each its own transaction
word_soup = st.builds(
    lambda head, words: head + " " + " ".join(words),
    st.sampled_from(HEADS),
    st.lists(st.sampled_from(WORDS), max_size=14),
)

# statements that parse, with fuzzed names, tables, columns, sources and option values
NAMES = st.sampled_from(["fz", "m1", "s1", "lf_big", "c", '""', '"a.b"', '"x y"', "select"])
TABLES = st.sampled_from(["c", "tr", "victim", "nope", '"a.b"', "main.c"])
COLUMNS = st.sampled_from(["id", "x", "label", "nope", "t"])
LITERALS = st.sampled_from(["0", "1", "2", "-5", "0.5", "1e999", "-1e999", "1e30", "100000", "'x'", "''", "true", "NULL",
                            "[1, 2]", "['p', 'q']", "[]", "{'a': 1}"])
OPTION_NAMES = st.sampled_from([
    "epochs", "lr", "batch_size", "threads", "hidden", "seed", "classes", "method", "strategy", "device_memory",
    "validation_split", "early_stopping", "label", "key", "min", "max", "min_rows", "max_rows", "significance",
    "drift_jsd", "domain", "min_fraction", "reason", "l2", "abstain", "scratch_dir", "nonsense",
])
option_list = st.lists(st.builds(lambda k, v: f"{k} := {v}", OPTION_NAMES, LITERALS), max_size=4, unique=True).map(", ".join)
SOURCES = st.sampled_from(["tr", "'tr'", "(SELECT x, label FROM tr LIMIT 30)", "'SELECT * FROM tr); DROP TABLE victim; SELECT (1'",
                           "'nope.csv'", "victim", "(SELECT 1 AS x WHERE false)"])
EXPRESSIONS = st.sampled_from(["CASE WHEN id > 3 THEN 'p' END", "x > 0", "count(*) > 1", "id", "'nonclass'", "NULL",
                               "x) FROM tr WHERE (true", "(SELECT max(a) FROM victim) > 0", "x > 0 -- comment"])
parsing = st.one_of(
    st.builds("CREATE MODEL {} WITH (epochs := 1, {}) AS SELECT x, label FROM tr LIMIT 40".format, NAMES, option_list),
    st.builds("CREATE LABELING FUNCTION {} ON {} WITH (classes := ['p', 'q']) AS {}".format, NAMES, TABLES, EXPRESSIONS),
    st.builds("CREATE LABEL MODEL {} ON {} KEY {} WITH ({})".format, NAMES, TABLES, COLUMNS, option_list),
    st.builds("APPLY LABELING FUNCTIONS ON {} KEY {}".format, TABLES, COLUMNS),
    st.builds("CREATE DATA SCHEMA {} FROM {} WITH ({})".format, NAMES, SOURCES, option_list),
    st.builds("ALTER DATA SCHEMA {} SET COLUMN {} ({})".format, NAMES, COLUMNS, option_list),
    st.builds("ALTER DATA SCHEMA {} SET ({})".format, NAMES, option_list),
    st.builds("ALTER DATA SCHEMA {} ACCEPT {}".format, NAMES, SOURCES),
    st.builds("ALTER DATA SCHEMA {} ADD CHECK {} AS {}".format, NAMES, NAMES, EXPRESSIONS),
    st.builds("DROP {} IF EXISTS {}".format, st.sampled_from(["MODEL", "DATA SCHEMA", "LABELING FUNCTION", "LABEL MODEL"]), NAMES),
)
statement_text = st.one_of(parsing, word_soup)


@given(statement=statement_text)
@example(statement="CREATE MODEL fz WITH (epochs := 1, threads := 100000) AS SELECT x, label FROM tr")
@example(statement="ALTER DATA SCHEMA s1 SET COLUMN x (min := 10, max := 1)")
@example(statement="CREATE LABEL MODEL fz ON c KEY id WITH (epochs := -5)")
def test_statement_text(world, statement):
    run_checked(world, statement)


# -- option values ---------------------------------------------------------------------------------

values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-10, max_value=10),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.lists(st.one_of(st.integers(), st.text(max_size=4), st.floats()), max_size=4),
)


def _training_option_names() -> list[str]:
    from sqlml.training.options import TRAINING_OPTIONS

    return sorted(TRAINING_OPTIONS) + ["hidden", "dropout", "activation", "workers", "device_memory", "shards", "stages",
                                       "micro_batches", "checkpoint_every", "spill_tier", "nonsense"]


@given(options=st.dictionaries(st.sampled_from(_training_option_names()), values, max_size=5))
def test_create_model_option_values_parse_or_are_refused(options):
    """``settle`` (CREATE MODEL's parse-time check) answers any values with a typed error or settled options."""
    from sqlml.training.options import settle

    try:
        settled = settle(options)
    except (InvalidOptionError, UnknownObjectError):
        return
    assert 1 <= settled["epochs"] <= 100_000 and 1 <= settled["batch_size"] <= 1 << 24
    assert 0 < settled["lr"] <= 10


@given(options=st.dictionaries(
    st.sampled_from(["method", "epochs", "lr", "l2", "abstain", "shrinkage", "seed", "anchor", "gold_weight", "weak_weight"]),
    values, max_size=4,
))
def test_label_model_option_values(shared_world, options):
    from sqlml.labeling.fit import check_options

    try:
        check_options(options)
    except InvalidOptionError:
        return
    items = ", ".join(f"{k} := {_literal(v)}" for k, v in options.items() if k != "epochs") + ", epochs := 5"
    run_checked(shared_world, f"CREATE OR REPLACE LABEL MODEL fz ON c KEY id WITH ({items.lstrip(', ')})")


@given(options=st.dictionaries(
    st.sampled_from(["min", "max", "min_fraction", "domain", "min_length", "max_length", "drift_jsd", "unique", "allow_nan"]),
    values, min_size=1, max_size=3,
))
def test_set_column_values(world, options):
    items = ", ".join(f"{k} := {_literal(v)}" for k, v in options.items())
    run_checked(world, f"ALTER DATA SCHEMA s1 SET COLUMN x ({items})")


def _literal(value) -> str:
    """A value as sqlml's option parser reads it (NaN and infinities as the numbers DuckDB prints)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "1e999" if value == float("inf") else "-1e999" if value == float("-inf") else "0" if value != value else repr(value)
    if isinstance(value, str):
        return quote_literal(value)
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    return str(value)


# -- object names ----------------------------------------------------------------------------------

CREATE_NAMED = {
    "model": "CREATE MODEL {name} WITH (epochs := 1, hidden := [2]) AS SELECT x, label FROM tr LIMIT 20",
    "labeling function": "CREATE LABELING FUNCTION {name} ON c AS CASE WHEN id > 3 THEN 'x' END",
    "data schema": "CREATE DATA SCHEMA {name} FROM (SELECT x FROM tr LIMIT 30)",
    "label model": "CREATE LABEL MODEL {name} ON c KEY id",
}
DROP_NAMED = {"model": "DROP MODEL {name}", "labeling function": "DROP LABELING FUNCTION {name}",
              "data schema": "DROP DATA SCHEMA {name}", "label model": "DROP LABEL MODEL {name}"}


@given(name=st.text(max_size=40) | st.sampled_from(["", "\x00", "a.b", "a\nb", "x" * 300, 'q"uote', "select", "lf_big"]),
       kind=st.sampled_from(list(CREATE_NAMED)))
def test_object_names(world, name, kind):
    """Any name: created under exactly that name (and dropped again), or refused changing nothing."""
    quoted = quote_ident(name) if name else '""'
    before = catalog_snapshot(world)
    try:
        world.sql(CREATE_NAMED[kind].format(name=quoted))
    except SqlmlError:
        assert catalog_snapshot(world) == before
        return
    finally:
        assert victim_intact(world)
    assert world.sql("SELECT count(*) FROM sqlml.objects WHERE kind = ? AND name = ?", params=[kind, name]).fetchall() == [(1,)]
    world.sql(DROP_NAMED[kind].format(name=quoted))
    assert world.sql("SELECT count(*) FROM sqlml.objects WHERE kind = ? AND name = ?", params=[kind, name]).fetchall() == [(0,)]


@pytest.mark.parametrize("name", ["m1", "s1"])
def test_names_taken_by_the_world_stay_taken(world, name):
    """A sanity check of the fixture the properties share: its objects exist."""
    assert world.sql("SELECT count(*) FROM sqlml.objects WHERE name = ?", params=[name]).fetchall() == [(1,)]
