"""Issue 15, row 8 (ours): names, dotted tables, contradictory bounds, missing versions, scratch folders.

Plus what the campaign's repro turned up on the way: a statement failing while DuckDB
streamed its query left its transaction open, and later statements silently joined it.
"""

from __future__ import annotations

import pytest

import sqlml
from sqlml.errors import DataError, InvalidOptionError, LabelingError, UnknownObjectError

from .conftest import catalog_snapshot

CREATES = {
    "model": "CREATE MODEL {name} WITH (epochs := 1, hidden := [4]) AS SELECT x, label FROM tr",
    "labeling function": "CREATE LABELING FUNCTION {name} ON c WITH (classes := ['p', 'q']) AS CASE WHEN id > 3 THEN 'p' END",
    "data schema": "CREATE DATA SCHEMA {name} FROM tr",
    "label model": "CREATE LABEL MODEL {name} ON c KEY id",
}


@pytest.fixture
def data(con):
    con.sql("CREATE TABLE tr AS SELECT range AS id, (range % 7)::DOUBLE AS x, CASE WHEN range % 2 = 0 THEN 'a' ELSE 'b' END AS label FROM range(100)")
    con.sql("CREATE TABLE c AS SELECT range AS id FROM range(50)")
    con.sql("CREATE LABELING FUNCTION base ON c WITH (classes := ['p', 'q']) AS CASE WHEN id < 10 THEN 'q' END")
    return con


@pytest.mark.parametrize("kind", list(CREATES))
@pytest.mark.parametrize("name", ['""', '"a\x00b"', '"tab\tname"', '"' + "n" * 256 + '"'])
def test_empty_nul_and_odd_names_are_refused(data, kind, name):
    before = catalog_snapshot(data)
    with pytest.raises(InvalidOptionError, match=r"option 'name'"):
        data.sql(CREATES[kind].format(name=name))
    assert catalog_snapshot(data) == before


def test_python_api_names_are_checked_too(data):
    from sqlml.validation import api

    with pytest.raises(InvalidOptionError, match="non-empty name"):
        api.create_schema(data, "", "tr")
    with pytest.raises(InvalidOptionError, match="control character"):
        data.register(sqlml.threshold_lf("bad\x00", on="c", column="id", op=">", value=3, label="p"))


def test_unusual_but_printable_names_work(data):
    data.sql(CREATES["data schema"].format(name='"my ""odd"" schema ünïcode"'))
    assert data.sql("SELECT name FROM ml_catalog(kind := 'data schema')").fetchall() == [('my "odd" schema ünïcode',)]


def test_a_dotted_table_name_is_refused_by_labeling_with_a_way_out(data):
    data.sql('CREATE TABLE "a.b" AS SELECT range AS id FROM range(10)')
    before = catalog_snapshot(data)
    with pytest.raises(LabelingError, match=r'without dots.*CREATE VIEW "a_b" AS SELECT \* FROM "a.b"'):
        data.sql("""CREATE LABELING FUNCTION lf1 ON "a.b" WITH (classes := ['x', 'y']) AS CASE WHEN id > 3 THEN 'x' END""")
    with pytest.raises(LabelingError, match="without dots"):
        data.sql('APPLY LABELING FUNCTIONS ON "a.b" KEY id')
    with pytest.raises(LabelingError, match="without dots"):
        data.sql('CREATE LABEL MODEL lm ON "a.b" KEY id')
    assert catalog_snapshot(data) == before
    data.sql('CREATE VIEW a_b AS SELECT * FROM "a.b"')  # the way out works end to end
    data.sql("CREATE LABELING FUNCTION lf1 ON a_b WITH (classes := ['x', 'y']) AS CASE WHEN id > 3 THEN 'x' END")
    data.sql("APPLY LABELING FUNCTIONS ON a_b KEY id")
    assert data.sql("SELECT lf, coverage FROM ml_lf_summary('a_b')").fetchall() == [("lf1", 0.6)]


@pytest.mark.parametrize(
    "setting, message",
    [
        ("SET COLUMN x (min := 10, max := 1)", "min 10.0 is above max 1.0"),  # the issue's
        ("SET COLUMN x (min := 100)", "min 100.0 is above max"),  # against the inferred max
        ("SET COLUMN x (min := 'nan'::DOUBLE)", None),
        ("SET COLUMN x (min := 1e999)", "finite"),
        ("SET (min_rows := 10, max_rows := 5)", "min_rows 10 is above max_rows 5"),
    ],
)
def test_contradictory_bounds_are_refused(data, setting, message):
    data.sql("CREATE DATA SCHEMA s FROM tr")
    before = catalog_snapshot(data)
    with pytest.raises((InvalidOptionError, sqlml.SqlmlSyntaxError), match=message):
        data.sql(f"ALTER DATA SCHEMA s {setting}")
    assert catalog_snapshot(data) == before


def test_schema_diff_against_a_missing_version_is_unknown(data):
    data.sql("CREATE DATA SCHEMA s FROM tr")
    data.sql("ALTER DATA SCHEMA s SET COLUMN x (max := 50)")
    assert data.sql("SELECT column_name, property FROM ml_schema_diff('s', 1, 2) WHERE property NOT LIKE 'constraint %'").fetchall() == [
        ("x", "max_value")
    ]
    with pytest.raises(UnknownObjectError, match=r"version of data schema 's' '7' does not exist") as info:
        data.sql("SELECT * FROM ml_schema_diff('s', 1, 7)").fetchall()
    assert info.value.suggestions == [] or set(info.value.suggestions) <= {"1", "2"}
    with pytest.raises(UnknownObjectError, match=r"data schema 'nope' does not exist"):
        data.sql("SELECT * FROM ml_schema_diff('nope', 1, 2)").fetchall()


@pytest.mark.parametrize("folder", ["/proc", "/proc/self/nope", "/dev/null/x"])
def test_an_unusable_scratch_dir_is_a_typed_error(data, folder):
    with pytest.raises(InvalidOptionError, match=r"option 'scratch_dir': cannot create a folder for the staged training data"):
        data.sql(f"CREATE MODEL m WITH (epochs := 1, scratch_dir := '{folder}') AS SELECT x, label FROM tr")
    assert data.sql("SELECT count(*) FROM sqlml.models").fetchall() == [(0,)]


def test_a_statement_failing_mid_stream_rolls_back_its_transaction(data):
    """On main the NaN refusal (raised while DuckDB streamed the query) left the transaction
    open: the next CREATE MODEL joined it and was never committed."""
    with pytest.raises(DataError, match="NaN or infinite"):
        data.sql("CREATE MODEL bad WITH (epochs := 1) AS SELECT CASE WHEN id = 3 THEN 'nan'::DOUBLE ELSE x END AS x, label FROM tr")
    probe = "SELECT current_transaction_id()"
    assert data.duckdb.execute(probe).fetchall() != data.duckdb.execute(probe).fetchall()  # autocommit again
    data.sql("CREATE MODEL good WITH (epochs := 1, hidden := [4]) AS SELECT x, label FROM tr")
    other = data.cursor()  # committed: another cursor sees it
    assert other.sql("SELECT name FROM sqlml.models").fetchall() == [("good",)]


def test_messages_name_the_statement_that_fixes_them(data, tmp_path):
    """A column missing from a data schema names the column and the schema; a taken name in
    IMPORT MODEL points to IMPORT MODEL OR REPLACE, not to a CREATE form it does not have."""
    from sqlml.errors import ObjectExistsError

    data.sql("CREATE DATA SCHEMA ds FROM tr")
    with pytest.raises(UnknownObjectError, match=r"column 'nope' does not exist\..*data schema 'ds' has no such column"):
        data.sql("ALTER DATA SCHEMA ds SET COLUMN nope (min := 1)")
    data.sql(CREATES["model"].format(name="m"))
    path = tmp_path / "m.pt"
    data.sql(f"EXPORT MODEL m TO '{path}'")
    before = catalog_snapshot(data)
    with pytest.raises(ObjectExistsError, match=r"IMPORT MODEL OR REPLACE m FROM"):
        data.sql(f"IMPORT MODEL m FROM '{path}'")
    assert catalog_snapshot(data) == before
    data.sql(f"IMPORT MODEL OR REPLACE m FROM '{path}'")
