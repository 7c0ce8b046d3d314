"""Versions: inference records, ACCEPT relaxes with reasons, diffs, history, checks, SET, DROP."""

import pytest

from sqlml.errors import InvalidOptionError, ObjectExistsError, SqlmlError, SqlmlSyntaxError, UnknownObjectError, ValidationError
from tests.validation.conftest import anomalies


def history(con, name="shop"):
    return con.sql(f"SELECT version, parent_version, action, source, reason FROM ml_schema_history('{name}')").fetchall()


def test_create_records_version_one_and_returns_the_schema(con):
    con.sql("CREATE TABLE t AS SELECT i AS id, ['a', 'b'][i % 2 + 1] AS c FROM range(100) t(i)")
    rel = con.sql("CREATE DATA SCHEMA s FROM t")
    rows = {r[0]: r for r in rel.fetchall()}
    assert set(rows) == {"id", "c"} and rows["c"][3] == 2  # domain_size
    assert history(con, "s") == [(1, None, "infer", "t", "inferred from t (100 rows)")]
    assert con.sql("SELECT kind, name FROM ml_catalog() WHERE kind = 'data schema'").fetchall() == [("data schema", "s")]
    with pytest.raises(ObjectExistsError):
        con.sql("CREATE DATA SCHEMA s FROM t")
    con.sql("CREATE DATA SCHEMA IF NOT EXISTS s FROM t")
    assert len(history(con, "s")) == 1


def test_or_replace_writes_the_next_version(con):
    con.sql("CREATE TABLE t AS SELECT range AS x FROM range(50)")
    con.sql("CREATE DATA SCHEMA s FROM t")
    con.sql("CREATE OR REPLACE DATA SCHEMA s FROM (SELECT range * 2 AS x FROM range(50))")
    (v1, v2) = history(con, "s")
    assert v2[:3] == (2, 1, "infer") and "CREATE OR REPLACE" in v2[4]


def test_accept_grows_domains_widens_bounds_relaxes_presence_and_says_why(shop):
    shop.sql(
        """CREATE TABLE batch AS SELECT * REPLACE (
              CASE WHEN id % 10 = 0 THEN 'purple' ELSE color END AS color,
              CASE WHEN id % 20 = 0 THEN amount * 1000 + 1 ELSE amount END AS amount,
              CASE WHEN id % 2 = 0 THEN NULL ELSE sometimes END AS sometimes), 'x' AS note
           FROM train"""
    )
    before = anomalies(shop, "batch")
    assert len(before) == 4
    (row,) = shop.sql("ALTER DATA SCHEMA shop ACCEPT batch WITH (reason := 'new colour line')").fetchall()
    assert row[1] == 2
    reason = row[2]
    for expected in ("ACCEPT batch", "'color' domain +1 (purple)", "'amount' bounds", "'sometimes' presence relaxed", "new column 'note'", "new colour line"):
        assert expected in reason
    assert anomalies(shop, "batch") == []
    v = history(shop)[-1]
    assert v[:4] == (2, 1, "accept", "batch")
    diff = shop.sql("SELECT column_name, property, before, after FROM ml_schema_diff('shop', 1, 2)").fetchall()
    props = {(c, p): (b, a) for c, p, b, a in diff}
    assert props[("color", "domain_added")] == (None, "purple")
    assert props[("color", "domain_size")] == ("3", "4")
    assert props[("note", "column")] == (None, "added: VARCHAR")
    assert float(props[("amount", "max_value")][1]) >= 144001
    # version 1 still validates as before
    assert len(shop.sql("SELECT * FROM ml_validate('batch', 'shop', version := 1)").fetchall()) == 4


def test_accept_of_conforming_data_writes_nothing(shop):
    (row,) = shop.sql("ALTER DATA SCHEMA shop ACCEPT train").fetchall()
    assert row[1] == 1 and "nothing to accept" in row[2]
    assert len(history(shop)) == 1


def test_accept_adopts_a_changed_type_and_drops_uniqueness(shop):
    shop.sql(
        "CREATE TABLE b AS SELECT * REPLACE (CAST(qty AS VARCHAR) AS qty) FROM train "
        "UNION ALL SELECT * REPLACE (CAST(qty AS VARCHAR) AS qty) FROM train WHERE id < 3"
    )
    shop.sql("ALTER DATA SCHEMA shop ACCEPT b")
    cols = {r[0]: r for r in shop.sql("SELECT column_name, data_type, is_unique FROM ml_schema('shop')").fetchall()}
    assert cols["qty"][1] == "VARCHAR" and cols["id"][2] is False
    assert anomalies(shop, "b") == []


def test_missing_column_becomes_optional(shop):
    shop.sql("ALTER DATA SCHEMA shop ACCEPT (SELECT * EXCLUDE (flag) FROM train)")
    assert anomalies(shop, "SELECT * EXCLUDE (flag) FROM train") == []
    assert shop.sql("SELECT min_fraction FROM ml_schema('shop') WHERE column_name = 'flag'").fetchall() == [(0.0,)]


def test_row_checks_report_failing_rows_with_examples(shop):
    (row,) = shop.sql("ALTER DATA SCHEMA shop ADD CHECK qty_small AS qty < 45").fetchall()
    assert row[1] == 2 and "ADD CHECK qty_small" in row[2]
    rel = shop.sql("SELECT * FROM ml_validate('train', 'shop')")
    (found,) = [dict(zip(rel.columns, r, strict=True)) for r in rel.fetchall()]
    assert found["anomaly_type"] == "CUSTOM_VALIDATION" and found["column_name"] == "qty"
    assert found["metric"] == 200 and "failed on 200 of 2,000 rows" in found["description"]
    assert found["examples"][0].startswith("{'qty': ")
    assert shop.sql("SELECT check_name, scope, expression FROM ml_schema_checks('shop')").fetchall() == [("qty_small", "row", "qty < 45")]


def test_null_passes_a_row_check_as_in_sql(shop):
    shop.sql("ALTER DATA SCHEMA shop ADD CHECK small AS sometimes < 7")
    assert anomalies(shop, "train") == []


def test_statistics_checks_are_aggregates_over_the_batch(shop):
    shop.sql("ALTER DATA SCHEMA shop ADD STATISTICS CHECK enough_red AS avg((color = 'red')::INT) > 0.3")
    assert anomalies(shop, "train") == []
    rows = shop.sql("SELECT anomaly_type, description, examples FROM ml_validate($$SELECT * FROM train WHERE color <> 'red'$$, 'shop')").fetchall()
    assert rows[0][0] == "CUSTOM_VALIDATION" and "statistics check 'enough_red' is false" in rows[0][1]
    assert rows[0][2][0].endswith("= 0.0")


def test_checks_must_bind_and_be_boolean(shop):
    with pytest.raises(ValidationError, match="does not bind"):
        shop.sql("ALTER DATA SCHEMA shop ADD CHECK bad AS no_such_column > 1")
    with pytest.raises(ValidationError, match="not BOOLEAN"):
        shop.sql("ALTER DATA SCHEMA shop ADD CHECK bad AS qty + 1")
    with pytest.raises(ValidationError, match="cannot use aggregates"):
        shop.sql("ALTER DATA SCHEMA shop ADD CHECK bad AS avg(qty) > 1")
    with pytest.raises(ValidationError, match="must aggregate"):
        shop.sql("ALTER DATA SCHEMA shop ADD STATISTICS CHECK bad AS qty > 1")
    with pytest.raises(ValidationError):
        shop.sql("ALTER DATA SCHEMA shop ADD CHECK bad AS qty > 1) OR (true")
    assert len(history(shop)) == 1  # nothing was written


def test_a_check_on_a_missing_column_fails_loudly(shop):
    shop.sql("ALTER DATA SCHEMA shop ADD CHECK qty_small AS qty < 1000")
    rows = shop.sql("SELECT anomaly_type, description FROM ml_validate('SELECT * EXCLUDE (qty) FROM train', 'shop')").fetchall()
    assert ("CUSTOM_VALIDATION" in [r[0] for r in rows]) and any("could not run" in r[1] for r in rows)


def test_drop_check_and_diff_of_checks(shop):
    shop.sql("ALTER DATA SCHEMA shop ADD CHECK qty_small AS qty < 45")
    shop.sql("ALTER DATA SCHEMA shop DROP CHECK qty_small")
    assert anomalies(shop, "train") == []
    assert shop.sql("SELECT property, before, after FROM ml_schema_diff('shop', 1, 2)").fetchall() == [("check qty_small", None, "row: qty < 45")]
    assert shop.sql("SELECT property, before, after FROM ml_schema_diff('shop', 2, 3)").fetchall() == [("check qty_small", "row: qty < 45", None)]
    with pytest.raises(UnknownObjectError):
        shop.sql("ALTER DATA SCHEMA shop DROP CHECK qty_small")
    shop.sql("ALTER DATA SCHEMA shop DROP CHECK IF EXISTS qty_small")
    with pytest.raises(ObjectExistsError):
        shop.sql("ALTER DATA SCHEMA shop ADD CHECK c AS true")
        shop.sql("ALTER DATA SCHEMA shop ADD CHECK c AS true")


def test_set_column_constraints_by_hand(shop):
    shop.sql("ALTER DATA SCHEMA shop SET COLUMN qty (min := 0, max := 40)")
    assert anomalies(shop, "train") == [("qty", "INT_TYPE_BIG_INT")]
    shop.sql("ALTER DATA SCHEMA shop SET COLUMN color (domain := ['red', 'green'], min_domain_mass := 1.0)")
    assert ("color", "ENUM_TYPE_UNEXPECTED_STRING_VALUES") in anomalies(shop, "train")
    with pytest.raises(InvalidOptionError, match="Did you mean 'max'"):
        shop.sql("ALTER DATA SCHEMA shop SET COLUMN qty (maxx := 3)")
    with pytest.raises(InvalidOptionError, match="between 0 and 1"):
        shop.sql("ALTER DATA SCHEMA shop SET COLUMN qty (min_fraction := 3)")
    with pytest.raises(UnknownObjectError):
        shop.sql("ALTER DATA SCHEMA shop SET COLUMN nope (min := 1)")


def test_history_and_diff_are_queryable_for_every_version(shop):
    shop.sql("ALTER DATA SCHEMA shop SET (max_rows := 10000)")
    shop.sql("ALTER DATA SCHEMA shop ADD CHECK positive AS amount >= 0")
    assert [h[2] for h in history(shop)] == ["infer", "set", "add check"]
    assert shop.sql("SELECT column_name, property, before, after FROM ml_schema_diff('shop', 1, 2)").fetchall() == [(None, "max_rows", None, "10000")]
    assert shop.sql("SELECT count(*) FROM ml_schema('shop', schema_version := 1)").fetchall() == [(7,)]


def test_drop_data_schema(shop):
    shop.sql("DROP DATA SCHEMA shop")
    with pytest.raises(UnknownObjectError, match="data schema 'shop' does not exist"):
        shop.sql("SELECT * FROM ml_validate('train', 'shop')").fetchall()
    with pytest.raises(UnknownObjectError):
        shop.sql("DROP DATA SCHEMA shop")
    shop.sql("DROP DATA SCHEMA IF EXISTS shop")
    assert shop.sql("SELECT count(*) FROM sqlml.data_schema_columns").fetchall() == [(0,)]


def test_unknown_schema_suggests_near_names(shop):
    with pytest.raises(UnknownObjectError, match="Did you mean 'shop'"):
        shop.sql("SELECT * FROM ml_validate('train', 'shopp')").fetchall()


def test_a_failed_statement_leaves_nothing(shop):
    with pytest.raises(SqlmlError):
        shop.sql("ALTER DATA SCHEMA shop ACCEPT no_such_table")
    with pytest.raises(SqlmlError):
        shop.sql("CREATE DATA SCHEMA other FROM no_such_table")
    assert len(history(shop)) == 1
    assert shop.sql("SELECT count(*) FROM ml_catalog() WHERE name = 'other'").fetchall() == [(0,)]


def test_syntax_errors_point_at_the_problem(shop):
    with pytest.raises(SqlmlSyntaxError, match="expected ACCEPT"):
        shop.sql("ALTER DATA SCHEMA shop FROBNICATE")
    with pytest.raises(SqlmlSyntaxError, match="expected FROM"):
        shop.sql("CREATE DATA SCHEMA x train")
    with pytest.raises(InvalidOptionError, match="max_domain_size"):
        shop.sql("CREATE DATA SCHEMA x FROM train WITH (max_domain_sise := 3)")


def test_a_check_that_cannot_run_leaves_the_callers_transaction_usable(shop):
    from sqlml.validation import api

    shop.sql("ALTER DATA SCHEMA shop ADD CHECK qty_small AS qty < 1000")
    duck = shop.duckdb
    duck.execute("BEGIN")
    found = api.validate(duck, "SELECT * EXCLUDE (qty) FROM train", "shop")
    assert duck.execute("SELECT 1").fetchall() == [(1,)]
    duck.execute("ROLLBACK")
    assert ("qty", "SCHEMA_MISSING_COLUMN") in {(a.column_name, a.anomaly_type) for a in found}
    (row,) = shop.sql("ALTER DATA SCHEMA shop ACCEPT (SELECT * EXCLUDE (qty) FROM train)").fetchall()
    assert "'qty' may be absent" in row[2] and "not accepted: row check 'qty_small' could not run" in row[2]
