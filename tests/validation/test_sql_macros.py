"""The validation readers are pure SQL: they run in the official DuckDB 1.5 shell on a file sqlml wrote."""

import subprocess
from pathlib import Path

import sqlml
from tests.core.test_duckdb_cli import duckdb_cli

MACROS = Path(__file__).resolve().parents[2] / "sql" / "macros" / "20_validation.sql"


def test_schema_history_diff_and_statistics_in_the_duckdb_shell(db_path):
    with sqlml.connect(db_path) as con:
        con.sql("CREATE TABLE t AS SELECT range AS id, ['a', 'b'][range % 2 + 1] AS c, range % 10 AS x FROM range(200)")
        con.sql("CREATE DATA SCHEMA s FROM t")
        con.sql("ALTER DATA SCHEMA s ACCEPT (SELECT range AS id, ['a', 'b', 'c'][range % 3 + 1] AS c, range % 10 AS x FROM range(200))")
        con.sql("ALTER DATA SCHEMA s ADD CHECK small AS x < 100")
        for span in ("1", "2"):
            con.sql(f"SELECT * FROM ml_statistics('t', dataset := 'parts', span := '{span}')").fetchall()
        expected_diff = con.sql("SELECT * FROM ml_schema_diff('s', 1, 3)").fetchall()
        expected_merged = con.sql("SELECT column_name, count, mean, median FROM ml_merged_statistics('parts')").fetchall()
    script = (
        f".read {MACROS}\n"
        ".mode csv\n"
        "SELECT version, action FROM ml_schema_history('s');\n"
        "SELECT column_name, property, before, after FROM ml_schema_diff('s', 1, 3);\n"
        "SELECT check_name, scope, expression FROM ml_schema_checks('s');\n"
        "SELECT column_name, count, mean, median FROM ml_merged_statistics('parts');\n"
        "SELECT count(*) AS columns FROM ml_schema('s', schema_version := 1);\n"
    )
    done = subprocess.run([duckdb_cli(), db_path], input=script, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    out = done.stdout
    assert "1,infer\n2,accept\n3,add check" in out
    assert "c,domain_added,NULL,c" in out and "check small,NULL,row: x < 100" in out
    assert "small,row,x < 100" in out
    assert 'c,constraint domain,"one of 2 values' in out  # each inferred constraint, why and how sure, in the diff
    assert ("x,400,4.5," in out) and len(expected_diff) == 4 and expected_merged[2][:3] == ("x", 400, 4.5)
    assert out.strip().endswith("columns\n3")
