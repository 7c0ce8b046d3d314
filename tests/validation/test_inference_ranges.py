"""Strict ranges from training data alone, each with its evidence, and where the evidence is too weak."""

from sqlml.validation import api
from tests.validation.conftest import anomalies
from tests.validation.synthetic import normal, uniform


def schema_columns(con, name="s"):
    rel = con.sql(f"SELECT * FROM ml_schema('{name}')")
    return {r[0]: dict(zip(rel.columns, r, strict=True)) for r in rel.fetchall()}


def evidence(column, kind):
    return next((e for e in column["evidence"] or () if e["kind"] == kind), None)


def test_calendar_units_get_the_whole_calendar_range_from_their_name_and_values(con):
    # a summer: months 6..8, days 1..30/31, hours 5..22; a duration in days is no calendar unit
    con.sql(
        """CREATE TABLE t AS SELECT 6 + i % 3 AS month, 1 + i % 28 AS day_of_month, 5 + i % 18 AS dep_hour,
                   1 + i % 28 AS days_waited, 2013 + i % 2 AS year, i % 60 AS minute
            FROM range(3000) t(i)"""
    )
    con.sql("CREATE DATA SCHEMA s FROM t")
    cols = schema_columns(con)
    assert (cols["month"]["valid_min"], cols["month"]["valid_max"]) == (1, 12)
    assert (cols["day_of_month"]["valid_min"], cols["day_of_month"]["valid_max"]) == (1, 31)
    assert (cols["dep_hour"]["valid_min"], cols["dep_hour"]["valid_max"]) == (0, 23)
    assert (cols["minute"]["valid_min"], cols["minute"]["valid_max"]) == (0, 59)
    why = evidence(cols["month"], "valid_range")
    assert why["rule"] == "1 <= month <= 12" and "3 distinct integers 6..8 in 3,000 rows" in why["reason"]
    assert 0.998 < why["confidence"] < 1
    assert cols["days_waited"]["valid_max"] is None  # 'days' is a count of days, not a day of the month
    assert cols["year"]["valid_min"] is None and cols["year"]["valid_max"] is None  # time moves on
    # month, day and year follow the dates a batch covers: no drift comparison; hour and minute do drift
    assert cols["month"]["drift_jsd"] is None and cols["year"]["drift_jsd"] is None and cols["dep_hour"]["drift_jsd"] is not None
    # so August, the 31st and an 11 pm departure are fine, a 13th month or a 25th hour are not
    assert anomalies(con, "SELECT 8 AS month, 31 AS day_of_month, 23 AS dep_hour, 5 AS days_waited, 2014 AS year, 0 AS minute", "s") == []
    found = anomalies(con, "SELECT * REPLACE (CASE WHEN i = 7 THEN 13 ELSE month END AS month, "
                           "CASE WHEN i = 8 THEN 25 ELSE dep_hour END AS dep_hour) FROM (SELECT *, row_number() OVER () AS i FROM t LIMIT 100)", "s")
    assert ("month", "INT_TYPE_BIG_INT") in found and ("dep_hour", "INT_TYPE_BIG_INT") in found


def test_a_constant_month_keeps_no_partition_constraint_but_the_calendar(con):
    con.sql("CREATE TABLE jan AS SELECT 1 AS month, i AS x FROM range(500) t(i)")
    con.sql("CREATE DATA SCHEMA s FROM jan")
    month = schema_columns(con)["month"]
    assert (month["min_value"], month["max_value"], month["valid_min"], month["valid_max"]) == (None, None, 1, 12)
    assert "the value 1 in 500 rows fits it" in evidence(month, "valid_range")["reason"]
    assert anomalies(con, "SELECT 7 AS month, 3 AS x", "s") == []


def test_integer_codes_close_only_at_sharp_edges(con):
    u = lambda tag: uniform("i", tag)  # noqa: E731
    con.sql(
        f"""CREATE TABLE t AS SELECT
              CAST({u('f')} < 0.3 AS INTEGER) AS flag,
              1 + CAST(floor({u('c')} * 5) AS INTEGER) AS code,
              CAST(floor(-3 * ln({u('p')})) AS INTEGER) AS waits,   -- geometric: thins out at the top
              CAST(floor({u('q')} * 50) AS INTEGER) AS qty          -- 50 values: a quantity, not a code
            FROM range(20000) t(i)"""
    )
    con.sql("CREATE DATA SCHEMA s FROM t")
    cols = schema_columns(con)
    assert (cols["flag"]["valid_min"], cols["flag"]["valid_max"]) == (0, 1)
    assert (cols["code"]["valid_min"], cols["code"]["valid_max"]) == (1, 5)
    assert "both edges are sharp" in evidence(cols["code"], "valid_range")["reason"]
    assert cols["waits"]["valid_min"] == 0 and cols["waits"]["valid_max"] is None
    assert cols["qty"]["valid_min"] == 0 and cols["qty"]["valid_max"] is None  # never negative, but no top
    assert anomalies(con, "SELECT 0 AS flag, 5 AS code, 60 AS waits, 55 AS qty", "s") == []
    found = anomalies(con, "SELECT * REPLACE (CASE WHEN flag = 1 AND code = 2 THEN 2 ELSE flag END AS flag) FROM t LIMIT 1000", "s")
    assert found == [("flag", "INT_TYPE_BIG_INT")]


def test_signs_and_the_unit_interval_need_evidence(con):
    u = lambda tag: uniform("i", tag)  # noqa: E731
    con.sql(
        f"""CREATE TABLE t AS SELECT
              170 + {u('d')} * 4000 AS distance,                     -- positive with a gap to 0
              {u('a')} * 100 AS amount,                              -- dense down to 0
              {u('p')} AS probability,                               -- all of [0, 1]
              3 + {normal('i', 'n')} AS near_zero                    -- a normal tail approaching 0
            FROM range(1000) t(i)"""
    )
    con.sql("CREATE DATA SCHEMA s FROM t")
    cols = schema_columns(con)
    assert cols["distance"]["valid_min"] == 0 and "where the density of the" in evidence(cols["distance"], "valid_range")["reason"]
    assert cols["amount"]["valid_min"] == 0 and "dense" in evidence(cols["amount"], "valid_range")["reason"]
    assert (cols["probability"]["valid_min"], cols["probability"]["valid_max"]) == (0, 1)
    assert cols["near_zero"]["valid_min"] is None  # its low tail says nothing about 0
    one_negative = "SELECT * REPLACE (CASE WHEN distance > 4000 THEN -distance ELSE distance END AS distance) FROM t LIMIT 100"
    rel = con.sql(f"SELECT column_name, anomaly_type, description FROM ml_validate($${one_negative}$$, 's')")
    ((column, kind, description),) = rel.fetchall()
    assert (column, kind) == ("distance", "FLOAT_TYPE_SMALL_FLOAT") and "valid minimum 0" in description and "where the density" in description


def test_small_tables_close_nothing_but_calendar_units(con):
    con.sql("CREATE TABLE t AS SELECT i % 2 AS flag, i + 5 AS amount, 1 + i % 12 AS month FROM range(60) t(i)")
    con.sql("CREATE DATA SCHEMA s FROM t")
    cols = schema_columns(con)
    assert cols["flag"]["valid_max"] is None and cols["amount"]["valid_min"] is None
    assert (cols["month"]["valid_min"], cols["month"]["valid_max"]) == (1, 12)


def test_every_constraint_says_why_in_the_schema_and_in_the_diff(con):
    con.sql("CREATE TABLE t AS SELECT i AS id, ['a', 'b', 'c'][i % 3 + 1] AS c, CASE WHEN i % 50 = 0 THEN NULL ELSE i % 7 END AS x, "
            "1 + i % 12 AS month FROM range(3000) t(i)")
    con.sql("CREATE DATA SCHEMA s FROM t")
    cols = schema_columns(con)
    kinds = {c: sorted(e["kind"] for e in col["evidence"]) for c, col in cols.items()}
    assert kinds == {"id": ["presence", "unique"], "c": ["domain", "presence"], "x": ["presence", "valid_range"],
                     "month": ["presence", "valid_range"]}
    presence = evidence(cols["x"], "presence")
    assert "NULL in 60 of 3,000 rows (2.00%); up to 2 times that tolerated" in presence["reason"]
    # the diff from nothing lists every constraint inference set, with why and how sure
    diff = con.sql("SELECT column_name, property, after FROM ml_schema_diff('s', 0, 1) WHERE property LIKE 'constraint %'").fetchall()
    assert ("month", "constraint valid_range") in {(c, p) for c, p, _ in diff}
    text = next(a for c, p, a in diff if (c, p) == ("month", "constraint valid_range"))
    assert text.startswith("1 <= month <= 12 (named like a calendar unit (month)") and "confidence 0.99" in text
    # a hand-set constraint says so, and the diff shows the change of reason
    con.sql("ALTER DATA SCHEMA s SET COLUMN x (valid_max := 5)")
    changed = {p: (b, a) for c, p, b, a in con.sql("SELECT * FROM ml_schema_diff('s', 1, 2)").fetchall() if c == "x"}
    assert changed["valid_max"] == ("6.0", "5.0")
    assert changed["constraint valid_range"][1] == "0 <= x <= 5 (set by hand (ALTER DATA SCHEMA ... SET COLUMN))"


def test_accept_widens_a_strict_range_and_records_why(con):
    con.sql("CREATE TABLE t AS SELECT 1 + i % 12 AS month, i % 7 AS x FROM range(2400) t(i)")
    con.sql("CREATE DATA SCHEMA s FROM t")
    batch = "SELECT CASE WHEN x = 0 THEN 13 ELSE month END AS month, x FROM t"
    assert ("month", "INT_TYPE_BIG_INT") in anomalies(con, batch, "s")
    (row,) = con.sql(f"ALTER DATA SCHEMA s ACCEPT ({batch})").fetchall()
    assert "'month' valid range [1, 12] -> [1, 13]" in row[2]
    month = schema_columns(con)["month"]
    assert month["valid_max"] == 13 and evidence(month, "valid_range")["reason"].startswith("ACCEPT")
    assert evidence(month, "valid_range")["confidence"] is None
    assert not [a for a in anomalies(con, batch, "s") if a[0] == "month"]


def test_integer_value_counts_feed_statistics_top_values(con):
    con.sql("CREATE TABLE t AS SELECT i % 3 AS k FROM range(30) t(i)")
    stats = api.statistics(con, "t", store_result=False)
    col = stats.columns["k"]
    assert col.values == {"0": 10, "1": 10, "2": 10} and col.values_exact and col.distinct_exact
    top = con.sql("SELECT top_values FROM ml_statistics('t', store := false)").fetchall()[0][0]
    assert [t["count"] for t in top] == [10, 10, 10]
