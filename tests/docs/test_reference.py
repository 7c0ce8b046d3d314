"""The manual is complete: every statement and ``ml_`` function has its own heading in
docs/sql-reference.md, every command in docs/python-and-shell.md, each linking to the page
that explains it; and every relative link of README.md and docs/ leads somewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sqlml.cli import build_parser
from sqlml.query.statements import STATEMENTS
from sqlml.udf import load_builtin

from .pages import DOCS, ROOT, all_pages, anchors, headings, links, relative

REFERENCE = DOCS / "sql-reference.md"
SHELL = DOCS / "python-and-shell.md"

def sections(path: Path) -> dict[str, str]:
    """Heading text -> the text under it, up to the next heading of the same or a higher level."""
    text = path.read_text()
    lines = text.split("\n")
    found = headings(text)
    out = {}
    for index, (line, level, title) in enumerate(found):
        end = next((n for n, lvl, _ in found[index + 1 :] if lvl <= level), len(lines) + 1)
        out[title] = "\n".join(lines[line : end - 1])
    return out

def heading_name(title: str) -> str:
    """`ml_predict(model, features...)` -> ml_predict; CREATE [OR REPLACE] MODEL -> CREATE MODEL."""
    title = title.replace("`", "").strip()
    title = re.sub(r"\[OR REPLACE\]\s*", "", title)
    return re.split(r"[\s(]", title, maxsplit=1)[0] if title.startswith("ml_") else title.upper()

def ml_functions(con) -> set[str]:
    python_functions = {name for name in load_builtin() if name.startswith("ml_")}
    macros = {
        row[0]
        for row in con.duckdb.sql(
            "SELECT DISTINCT function_name FROM duckdb_functions() WHERE starts_with(function_name, 'ml_')"
        ).fetchall()
    }
    return python_functions | macros

def documented(path: Path, names: set[str], name_of) -> dict[str, str]:
    found = {}
    for title, body in sections(path).items():
        name = name_of(title)
        if name in names:
            found[name] = body
    return found

def check(path: Path, names: set[str], name_of, what: str, *, linked: bool = True):
    found = documented(path, names, name_of)
    missing = sorted(names - set(found))
    assert missing == [], f"{relative(path)} has no heading for the {what} {missing}"
    if not linked:
        return found
    unlinked = sorted(n for n, body in found.items() if not re.search(r"\]\((?!#)[^)]*\.md", body))
    assert unlinked == [], f"{relative(path)}: the {what} {unlinked} link to no page that explains them"
    return found

def test_every_statement_has_a_reference_entry():
    found = check(REFERENCE, set(STATEMENTS), heading_name, "statements")
    for key, body in found.items():
        assert "```text" in body, f"{key}: its reference entry shows no syntax (a ```text block)"

def test_every_ml_function_has_a_reference_entry(con):
    names = ml_functions(con)
    assert len(names) > 20  # the check sees the real registry, not an empty one
    check(REFERENCE, names, heading_name, "functions")

def test_every_command_is_documented():
    commands = set(build_parser()._subparsers._group_actions[0].choices)
    assert commands >= {"shell", "run", "demo", "serve"}
    check(SHELL, {f"sqlml {c}" for c in commands}, lambda t: t.replace("`", "").split(" [")[0].strip(), "commands", linked=False)

@pytest.mark.parametrize("path", all_pages(), ids=relative)
def test_relative_links_resolve(path):
    broken = []
    for line, target in links(path.read_text()):
        if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        resolved = (path.parent / file).resolve() if file else path
        if not resolved.exists():
            broken.append(f"line {line}: {target} (no such file)")
            continue
        if anchor and resolved.suffix == ".md" and anchor not in anchors(resolved.read_text()):
            broken.append(f"line {line}: {target} (no heading #{anchor} in {resolved.name})")
    assert broken == [], f"{relative(path)}:\n" + "\n".join(broken)

def test_long_pages_open_with_a_table_of_contents():
    for path in all_pages()[1:]:
        text = path.read_text()
        if len(text) > 12_000:
            head = "\n".join(text.split("\n")[:40])
            assert re.search(r"\]\(#", head), f"{relative(path)} is long and has no table of contents at the top"

def test_readme_is_the_front_door():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) <= 15_500, "README.md is the front door (at most ~15 KB); the manual lives in docs/"
