"""Drift by default: a schema keeps a compact reference, so ml_validate compares with no baseline.

On real flights: the schema is inferred from a random half (tests/validation/flights_suite.py).
"""

import duckdb
import pytest

import sqlml
from sqlml import catalog
from sqlml.validation import api
from tests.validation import flights_suite as suite

DELAYED = "SELECT * REPLACE (dep_delay + 30 AS dep_delay) FROM ({})"
JFK = "SELECT * REPLACE (CASE WHEN origin <> 'JFK' AND hash('j' || flight_id) % 2 = 0 THEN 'JFK' ELSE origin END AS origin) FROM ({})"


@pytest.fixture(scope="module")
def flights(flights_half):
    return flights_half  # schema 'flights' from a random half of the flights


def found(con, source, schema="flights", **named):
    args = "".join(f", {k} := $${v}$$" for k, v in named.items())
    return {(c, t) for c, t in con.sql(f"SELECT column_name, anomaly_type FROM ml_validate($${source}$$, '{schema}'{args})").fetchall()}


def test_a_delay_shift_and_a_doubled_jfk_share_are_caught_at_1k_rows_with_no_baseline(flights):
    batch = suite.sample(1000, 1)
    assert found(flights, batch) == set()
    assert {("dep_delay", "MEAN_SHIFT"), ("dep_delay", "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH")} == found(flights, DELAYED.format(batch))
    assert found(flights, JFK.format(batch)) == {("origin", "COMPARATOR_L_INFTY_HIGH")}
    rel = flights.sql(f"SELECT description, family FROM ml_validate($${JFK.format(batch)}$$, 'flights')").fetchall()
    assert "'JFK' went from 33." in rel[0][0] and rel[0][1] == "drift"


def test_a_baseline_still_overrides_the_reference(flights):
    batch = DELAYED.format(suite.sample(1000, 2))
    assert not found(flights, batch, baseline=DELAYED.format("SELECT * FROM other"))
    assert ("dep_delay", "MEAN_SHIFT") in found(flights, batch, baseline="train")


def test_serving_compares_with_the_reference_as_skew(flights):
    rows = flights.sql(f"SELECT column_name, anomaly_type, family FROM ml_validate($${DELAYED.format(suite.sample(1000, 3))}$$, 'flights', "
                       "environment := 'serving')").fetchall()
    assert ("dep_delay", "MEAN_SHIFT", "skew") in rows


def test_the_reference_is_compact_and_readable(flights):
    rows = flights.sql("SELECT column_name, len(cuts), len(bin_counts), len(\"values\") FROM sqlml.data_schema_reference "
                       "WHERE schema_name = 'flights' AND version = 1").fetchall()
    assert len(rows) == 20  # one per column
    assert all(bins is None or bins <= 11 for _, _, bins, _ in rows)
    assert all(values is None or values <= 200 for _, _, _, values in rows)
    ref = {r[0]: r for r in flights.sql("SELECT column_name, rows, mean, std, bins, top_values FROM ml_schema_reference('flights')").fetchall()}
    rows_total = flights.sql("SELECT count(*), avg(dep_delay), stddev_samp(dep_delay) FROM train").fetchall()[0]
    assert ref["dep_delay"][1] == rows_total[0] and ref["dep_delay"][2] == pytest.approx(rows_total[1])
    assert ref["dep_delay"][3] == pytest.approx(rows_total[2])
    assert sum(b["count"] for b in ref["dep_delay"][4]) == flights.sql("SELECT count(dep_delay) FROM train").fetchall()[0][0]
    assert {t["value"] for t in ref["origin"][5]} == {"EWR", "JFK", "LGA"}


def test_the_reference_is_versioned_with_the_schema_and_accept_makes_the_batch_the_reference():
    con = sqlml.connect()
    suite.load(con)
    con.sql("CREATE DATA SCHEMA g FROM train")
    con.sql("ALTER DATA SCHEMA g SET (min_rows := 10)")  # version 2: the reference is copied
    same = con.sql("SELECT count(*) FROM (SELECT * EXCLUDE (version) FROM sqlml.data_schema_reference WHERE schema_name = 'g' AND version = 1 "
                   "EXCEPT SELECT * EXCLUDE (version) FROM sqlml.data_schema_reference WHERE schema_name = 'g' AND version = 2)").fetchall()
    assert same == [(0,)]
    delayed = DELAYED.format(suite.sample(2000, 4))
    con.sql(f"CREATE TABLE delayed AS {delayed}")
    assert ("dep_delay", "MEAN_SHIFT") in found(con, "delayed", "g")
    (row,) = con.sql("ALTER DATA SCHEMA g ACCEPT delayed").fetchall()
    assert row[1] == 3 and "'dep_delay' moved: the batch is the drift reference now" in row[2]
    assert found(con, "delayed", "g") == set()  # drift is measured since the data last accepted
    assert ("dep_delay", "MEAN_SHIFT") in found(con, suite.sample(2000, 5), "g")
    assert found(con, "delayed", "g", version=1) >= {("dep_delay", "MEAN_SHIFT")}  # old versions keep theirs
    con.close()


def test_a_schema_written_before_references_keeps_working(db_path):
    """A catalog at version 7 with a schema written then: migrated on open, validated, accepted."""
    with sqlml.connect() as new:
        suite.load(new)
        new.sql("CREATE DATA SCHEMA flights FROM train")
        old_columns = [r[0] for r in new.sql(
            "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'sqlml' AND table_name = 'data_schema_columns' "
            "AND column_name NOT IN ('valid_min', 'valid_max', 'evidence')").fetchall()]
        versions = new.sql("SELECT * FROM sqlml.data_schema_versions").to_arrow_table()
        columns = new.sql(f"SELECT {', '.join(old_columns)} FROM sqlml.data_schema_columns").to_arrow_table()
        objects = new.sql("SELECT * FROM sqlml.objects WHERE kind = 'data schema'").to_arrow_table()
        train = new.sql("SELECT * FROM train").to_arrow_table()
        other = new.sql("SELECT * FROM other").to_arrow_table()
    raw = duckdb.connect(db_path)
    catalog.migrate(raw, up_to=7)
    for table, data in (("sqlml.data_schema_versions", versions), ("sqlml.data_schema_columns", columns), ("sqlml.objects", objects)):
        raw.register("data", data)
        raw.execute(f"INSERT INTO {table} BY NAME SELECT * FROM data")
        raw.unregister("data")
    for name, data in (("train", train), ("other", other)):
        raw.register("data", data)
        raw.execute(f"CREATE TABLE {name} AS SELECT * FROM data")
        raw.unregister("data")
    raw.close()
    with sqlml.connect(db_path) as con:
        assert catalog.catalog_version(con.duckdb) == catalog.latest_version()
        schema = api.load_schema(con, "flights")
        assert schema.reference is None and schema.columns["month"].valid_max is None and schema.columns["month"].evidence is None
        delayed = DELAYED.format(suite.sample(1000, 6))
        assert found(con, delayed) == set()  # no reference: nothing to compare with by default
        assert ("dep_delay", "MEAN_SHIFT") in found(con, delayed, baseline="train")
        assert ("month", "INT_TYPE_BIG_INT") in found(con, "SELECT * REPLACE (13 AS month) FROM other LIMIT 500")
        con.sql("ALTER DATA SCHEMA flights ACCEPT (SELECT * REPLACE (CASE WHEN flight_id % 100 = 0 THEN 'ZZ' ELSE carrier END AS carrier) FROM other)")
        assert api.load_schema(con, "flights").reference is not None
        assert ("dep_delay", "MEAN_SHIFT") in found(con, delayed)
