import pytest

from tests.optimizer.counting import CountingModel, make_tables
from tests.torch_threads import _one_torch_thread  # noqa: F401 (autouse fixture)


@pytest.fixture
def scored(con):
    """The ``con`` fixture with tables t and u and the counting model function ml_score."""
    make_tables(con)
    model = CountingModel("ml_score").install(con)
    yield con, model
    model.uninstall()


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
