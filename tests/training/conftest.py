import pytest

from tests.torch_threads import _one_torch_thread  # noqa: F401 (autouse fixture)


@pytest.fixture
def flights_like(con):
    """5,000 rows: two numeric features, a categorical one, a FLOAT[2] array, and a label from a known rule."""
    con.sql(
        """
        CREATE TABLE train AS
        SELECT i AS id,
               (hash(i, 1) % 1000) / 1000.0 AS a,
               (hash(i, 2) % 1000) / 1000.0 AS b,
               ['red', 'green', 'blue'][1 + (hash(i, 3) % 3)::BIGINT] AS color,
               [(hash(i, 4) % 100) / 100.0, (hash(i, 5) % 100) / 100.0]::FLOAT[2] AS pair,
               CASE WHEN a + b + (CASE WHEN color = 'red' THEN 0.5 ELSE 0 END) > 1.2 THEN 'late' ELSE 'on_time' END AS label
        FROM range(5000) r(i)
        """
    )
    return con
