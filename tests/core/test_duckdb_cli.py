"""The official DuckDB shell (duckdb-cli 1.5.6) opens a file sqlml wrote and runs sql/install.sql."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import sqlml
from sqlml import catalog

ROOT = Path(__file__).resolve().parents[2]


def duckdb_cli() -> str:
    beside = Path(sys.executable).parent / "duckdb"
    found = str(beside) if beside.exists() else shutil.which("duckdb")
    if found is None:
        pytest.fail("the duckdb CLI is missing: install the test extra (pip install -e '.[test]')")
    return found


def test_cli_opens_sqlml_file_and_reads_install_sql(db_path):
    with sqlml.connect(db_path) as con:
        con.sql("CREATE TABLE flights AS SELECT range AS id, range % 7 AS delay FROM range(100)")
        catalog.put_object(con.duckdb, "model", "demo_model", {"note": "written by sqlml"})
    cli = duckdb_cli()
    version = subprocess.run([cli, "--version"], capture_output=True, text=True, check=True).stdout
    assert version.startswith("v1.5")
    script = (
        f".read {ROOT / 'sql' / 'install.sql'}\n"
        f".read {ROOT / 'sql' / 'install.sql'}\n"  # idempotent
        ".mode csv\n"
        "SELECT ml_catalog_version() AS v;\n"
        "SELECT name, properties->>'note' AS note FROM ml_objects('model');\n"
        "SELECT count(*) AS n FROM flights;\n"
    )
    done = subprocess.run([cli, db_path], input=script, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert lines == ["v", str(catalog.latest_version()), "name,note", "demo_model,written by sqlml", "n", "100"]
    # and sqlml still opens the file afterwards (the persistent macros do not get in the way)
    with sqlml.connect(db_path) as con:
        assert con.sql("SELECT count(*) FROM flights").fetchall() == [(100,)]
