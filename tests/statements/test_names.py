"""One name per statement: its key, its handler, its docs heading and its fixture file.

For the key ``CREATE LABEL MODEL`` the handler is ``create_label_model`` in
``sqlml.<area>.statements``, ``docs/sql-reference.md`` has a ``### `CREATE LABEL MODEL```
heading, and ``tests/statements/create_label_model.sql`` holds its golden cases: at least
one that succeeds (``# expect:``) and one that must fail (``# error:``).
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

import sqlml  # noqa: F401  (fills STATEMENTS)
from sqlml.query.statements import STATEMENTS

from .runner import FOLDER, statement_cases

DOCS = Path(__file__).resolve().parents[2] / "docs" / "sql-reference.md"
HANDLER = re.compile(r"^sqlml\.(\w+)\.statements:(\w+)$")


def snake(key: str) -> str:
    return "_".join(key.lower().split())


def problems(statements: dict[str, str], docs: str, cases, files: set[str]) -> list[str]:
    """Every way the four names disagree (empty when they all agree)."""
    found = []
    headings = set(re.findall(r"^### `([^`]+)`\s*$", docs, re.M))
    for key, handler in sorted(statements.items()):
        name = snake(key)
        match = HANDLER.match(handler)
        if not match:
            found.append(f"{key}: handler {handler!r} is not in sqlml.<area>.statements")
        elif match.group(2) != name:
            found.append(f"{key}: handler function {match.group(2)!r} should be named {name!r}")
        elif not callable(getattr(importlib.import_module(handler.partition(":")[0]), name, None)):
            found.append(f"{key}: {handler.partition(':')[0]} has no function {name!r}")
        if key not in headings:
            found.append(f"{key}: docs/sql-reference.md has no heading ### `{key}`")
        if name not in files:
            found.append(f"{key}: no fixture file tests/statements/{name}.sql")
        mine = [c for c in cases if c.file == name]
        if not any("expect" in c.options for c in mine):
            found.append(f"{key}: {name}.sql has no case that succeeds (# expect:)")
        if not any("error" in c.options for c in mine):
            found.append(f"{key}: {name}.sql has no case that must fail (# error:)")
    for name in sorted(files - {snake(k) for k in statements}):
        found.append(f"tests/statements/{name}.sql names no statement")
    return found


def test_every_statement_has_one_name_everywhere():
    files = {p.stem for p in FOLDER.glob("*.sql")}
    assert problems(STATEMENTS, DOCS.read_text(), statement_cases(), files) == []


@pytest.mark.parametrize(
    "break_it, expected",
    [
        (lambda s, d, f: s.update({"CREATE MODEL": "sqlml.training.runner:create_model"}), "not in sqlml.<area>.statements"),
        (lambda s, d, f: s.update({"CREATE MODEL": "sqlml.training.statements:make_model"}), "should be named"),
        (lambda s, d, f: s.update({"CREATE WIDGET": "sqlml.training.statements:create_widget"}), "has no function"),
        (lambda s, d, f: d.append("CREATE MODEL"), "has no heading"),
        (lambda s, d, f: f.discard("create_model"), "no fixture file"),
        (lambda s, d, f: f.add("create_widget"), "names no statement"),
    ],
    ids=["handler module", "handler name", "handler missing", "docs heading", "fixture file", "stray fixture"],
)
def test_each_missing_name_is_reported(break_it, expected):
    statements, files, removed = dict(STATEMENTS), {p.stem for p in FOLDER.glob("*.sql")}, []
    break_it(statements, removed, files)
    docs = DOCS.read_text()
    for key in removed:
        docs = docs.replace(f"### `{key}`", f"### {key}")
    found = problems(statements, docs, statement_cases(), files)
    assert any(expected in line for line in found), found


def test_a_file_without_a_failing_case_is_reported():
    cases = [c for c in statement_cases() if not (c.file == "drop_model" and "error" in c.options)]
    files = {p.stem for p in FOLDER.glob("*.sql")}
    found = problems(STATEMENTS, DOCS.read_text(), cases, files)
    assert found == ["DROP MODEL: drop_model.sql has no case that must fail (# error:)"]
