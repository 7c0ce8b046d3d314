"""The real-data suite (tests/validation/flights_suite.py), from SQL: every injected anomaly on its
column, and no anomaly at all on clean batches of 100, 1,000 and 10,000 rows, the other half,
and the months of each season against a schema from another month of it."""

import pytest

from tests.validation import flights_suite as suite


@pytest.fixture(scope="module")
def flights(flights_half):
    return flights_half


def validate(con, query, schema="flights"):
    return con.execute("SELECT column_name, anomaly_type FROM ml_validate(?, ?)", [query, schema]).fetchall()


@pytest.mark.parametrize("case", suite.injected(), ids=lambda c: c.name)
def test_every_injected_anomaly_is_found_on_its_column(flights, case):
    found = validate(flights, case.sql)
    assert (case.column, case.anomaly_type) in found, found


def test_clean_batches_raise_nothing(flights):
    alarms = {name: validate(flights, query) for name, query in suite.clean({100: 12, 1_000: 5, 10_000: 2})}
    assert {name: found for name, found in alarms.items() if found} == {}


@pytest.mark.slow
def test_many_clean_batches_raise_nothing(flights):
    alarms = {name: validate(flights, query) for name, query in suite.clean({100: 200, 1_000: 50, 10_000: 10})}
    assert {name: found for name, found in alarms.items() if found} == {}


def test_months_of_a_season_are_clean_against_a_schema_from_another_month(flights):
    alarms = {}
    for season, first, month in suite.season_pairs():
        flights.sql(f"CREATE OR REPLACE DATA SCHEMA {season} FROM ({suite.month_query(first)})")
        alarms[(season, month)] = validate(flights, suite.month_query(month), season)
    assert {k: v for k, v in alarms.items() if v} == {}
