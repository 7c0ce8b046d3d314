"""Fixtures of the hardening tests (issue 15): a database with data, objects and a victim table."""

from __future__ import annotations

import hashlib
import os

import pytest
from hypothesis import HealthCheck, settings

from tests.torch_threads import _one_torch_thread  # noqa: F401 (autouse fixture)

# Fuzz budgets: a few seconds per property in the default run; `make test-all` sets
# SQLML_FUZZ=all for ten times the examples. Derandomized, no example database: the
# same examples every run, so CI cannot flake.
_COMMON = dict(derandomize=True, database=None, deadline=None, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("default", max_examples=25, **_COMMON)
settings.register_profile("all", max_examples=250, **_COMMON)
settings.load_profile(os.environ.get("SQLML_FUZZ", "default"))

#: Written on a side connection while training, kept when a statement fails (so an
#: identical statement resumes): documented exceptions to "nothing of a failed statement stays".
RESUMABLE_TABLES = ("checkpoints", "training_runs")


@pytest.fixture
def world(con):
    """``tr`` (200 rows), ``victim``, a data schema ``s1`` from tr, a model ``m1``, LFs on ``c``."""
    return build_world(con)


@pytest.fixture(scope="module")
def shared_world():
    """``world`` once per test module, for tests that must change nothing anyway."""
    import sqlml

    con = sqlml.connect()
    yield build_world(con)
    con.close()


def build_world(con):
    con.sql(
        "CREATE TABLE tr AS SELECT range AS id, (range % 7)::DOUBLE AS x, (range % 3)::DOUBLE AS y, "
        "CASE WHEN range % 2 = 0 THEN 'a' ELSE 'b' END AS label, (range % 5)::DOUBLE AS r FROM range(200)"
    )
    con.sql("CREATE TABLE victim AS SELECT 42 AS a")
    con.sql("CREATE TABLE c AS SELECT range AS id, range::VARCHAR AS t FROM range(60)")
    con.sql("CREATE DATA SCHEMA s1 FROM tr")
    con.sql("CREATE MODEL m1 WITH (epochs := 1, hidden := [4]) AS SELECT x, y, label FROM tr")
    con.sql("CREATE LABELING FUNCTION lf_big ON c WITH (classes := ['x', 'y']) AS CASE WHEN id > 30 THEN 'x' END")
    con.sql("CREATE LABELING FUNCTION lf_small ON c AS CASE WHEN id < 10 THEN 'y' END")
    return con


def victim_intact(con) -> bool:
    return con.sql("SELECT * FROM victim").fetchall() == [(42,)]


def catalog_snapshot(con) -> dict[str, tuple[int, str]]:
    """Every sqlml catalog table (and every user table) as (row count, digest of its rows)."""
    duck = con.duckdb.cursor()
    try:
        tables = duck.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE NOT temporary ORDER BY ALL"
        ).fetchall()
        out = {}
        for schema, table in tables:
            if schema == "sqlml" and table in RESUMABLE_TABLES:
                continue
            ref = f'"{schema}"."{table}"'
            rows = duck.execute(f"SELECT CAST(t AS VARCHAR) FROM {ref} AS t").fetchall()
            digest = hashlib.sha256("\n".join(sorted(r[0] for r in rows)).encode()).hexdigest()
            out[f"{schema}.{table}"] = (len(rows), digest)
        return out
    finally:
        duck.close()
