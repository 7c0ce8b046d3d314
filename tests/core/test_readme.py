"""README is the user's manual: it names every statement, function and command, and the
examples it shows of sqlml's own output are what sqlml prints."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sqlml.cli import build_parser
from sqlml.query.statements import STATEMENTS
from sqlml.udf import load_builtin

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_ml_function_is_documented(con):
    python_functions = {name for name in load_builtin() if name.startswith("ml_")}
    macros = {
        row[0]
        for row in con.duckdb.sql(
            "SELECT DISTINCT function_name FROM duckdb_functions() WHERE starts_with(function_name, 'ml_')"
        ).fetchall()
    }
    names = python_functions | macros
    assert len(names) > 20  # the check sees the real registry, not an empty one
    missing = sorted(n for n in names if not re.search(rf"\b{re.escape(n)}\b", README))
    assert missing == [], f"README does not mention {missing}"


def test_every_statement_is_documented():
    text = " ".join(README.upper().split())
    missing = [key for key in STATEMENTS if key not in text and key.replace("CREATE ", "", 1) not in text]
    assert missing == [], f"README does not show the statements {missing}"


def test_every_command_is_documented():
    commands = build_parser()._subparsers._group_actions[0].choices
    assert set(commands) >= {"shell", "run", "demo", "serve"}
    missing = [c for c in commands if f"sqlml {c}" not in README]
    assert missing == [], f"README does not show the commands {missing}"


def test_syntax_error_example_is_what_sqlml_prints(con):
    block = re.search(r"```\n(sqlml\.SqlmlSyntaxError: .*?)\n```", README, re.DOTALL)
    assert block is not None, "README lost its syntax-error example"
    shown = block.group(1).splitlines()
    statement = shown[1]
    con.sql("CREATE TABLE t AS SELECT 1 AS x")
    with pytest.raises(Exception) as caught:
        con.sql("SELECT 1;\n" + statement.replace("...", "* FROM t"))
    printed = f"{type(caught.value).__module__.split('.')[0]}.{type(caught.value).__name__}: {caught.value}"
    lines = printed.splitlines()
    assert lines[0] == shown[0]
    assert lines[2].index("^") == shown[2].index("^")
