"""A small trained model for the folders that score one: import the fixture into their conftest."""

import pytest

TRAIN_ROWS = """
CREATE TABLE train AS
SELECT i AS id,
       (hash(i, 1) % 1000) / 1000.0 AS a,
       (hash(i, 2) % 20)::DOUBLE / 20 AS b,
       ['red', 'green', 'blue'][1 + (hash(i, 3) % 3)::BIGINT] AS color,
       CASE WHEN a + b + (CASE WHEN color = 'red' THEN 0.5 ELSE 0 END) > 1.2 THEN 'late' ELSE 'on_time' END AS label
FROM range(3000) r(i)
"""


def train_model(con, name="delay", epochs=2, seed=0, replace=False):
    verb = "CREATE OR REPLACE MODEL" if replace else "CREATE MODEL"
    con.sql(f"{verb} {name} WITH (epochs := {epochs}, seed := {seed}) AS SELECT a, b, color, label FROM train").fetchall()


@pytest.fixture
def trained(con):
    """``con`` with table train (3,000 rows; ``b`` takes 20 values) and model ``delay``."""
    con.sql(TRAIN_ROWS)
    train_model(con)
    return con
