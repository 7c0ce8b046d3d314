"""Run a page's examples: setups and ```sql blocks in page order, in one fresh connection.

A failure names the page, the block, the line of the failing statement, the SQL and the
error, so that the reader of a red test knows which example to fix without running it.
"""

from __future__ import annotations

import os
import re
import textwrap
import traceback
from dataclasses import dataclass, field

import sqlml
from sqlml.query.tokens import split_statements
from sqlml.render import render

from .pages import Block, Page


class ExampleFailed(AssertionError):
    pass


@dataclass
class Outcome:
    """What the last statement of a block gave: columns and rows, or the error it raised."""

    columns: list[str] | None = None
    rows: list[tuple] | None = None
    error: BaseException | None = None


@dataclass
class PageRun:
    page: Page
    include_slow: bool
    ran: list[Block] = field(default_factory=list)
    skipped: list[tuple[Block, str]] = field(default_factory=list)


def statements(block: Block) -> list[tuple[int, str]]:
    """(line in the page, text) of each statement of a block."""
    out = []
    for start, end in split_statements(block.text):
        text = block.text[start:end]
        # the statement starts after the blank lines and comment lines that precede it
        body = re.sub(r"\A(?:\s*--[^\n]*\n)*\s*", "", text)
        leading = len(text) - len(body)
        text = body
        line = block.line + 1 + block.text[: start + leading].count("\n")
        out.append((line, text.strip()))
    return out


def printed(error: BaseException) -> str:
    """An error as Python prints its last line: ``sqlml.SqlmlSyntaxError: message``."""
    module = type(error).__module__.split(".")[0]
    name = type(error).__name__ if module == "builtins" else f"{module}.{type(error).__name__}"
    return f"{name}: {error}"


def failure(block: Block, line: int, sql: str, problem: str) -> ExampleFailed:
    return ExampleFailed(
        f"\n{block.where}, statement at line {line}:\n{textwrap.indent(sql, '    ')}\n{textwrap.indent(problem, '  ')}"
    )


def run_sql(con, block: Block, *, expect_error: bool = False) -> Outcome:
    __tracebackhide__ = True
    found = statements(block)
    if not found:
        raise failure(block, block.line, block.text, "the block holds no SQL statement")
    outcome = Outcome()
    for index, (line, sql) in enumerate(found):
        last = index == len(found) - 1
        try:
            relation = con.sql(sql)
            outcome = Outcome()
            if relation is not None:  # fetch: errors inside ml_ functions surface when rows are read
                outcome = Outcome(list(relation.columns), relation.fetchall())
        except Exception as error:  # noqa: BLE001 - reported with the example
            if expect_error and last:
                return Outcome(error=error)
            raise failure(block, line, sql, "".join(traceback.format_exception_only(error)).rstrip()) from error
    if expect_error:
        raise failure(block, found[-1][0], found[-1][1], "the example is marked 'raises' but it ran without an error")
    return outcome


def run_python(block: Block, scope: dict) -> None:
    __tracebackhide__ = True
    try:
        exec(compile(block.text, f"{block.where}", "exec"), scope)  # noqa: S102 - our own docs
    except Exception as error:  # noqa: BLE001
        raise ExampleFailed(f"\n{block.where}:\n{textwrap.indent(block.text, '    ')}\n  {printed(error)}") from error


def check_shown(block: Block, shown: Block | None, actual: str, what: str) -> None:
    __tracebackhide__ = True
    if shown is None:
        raise ExampleFailed(f"\n{block.where}: marked '{what}' but no ```text block follows it")
    expected = "\n".join(line.rstrip() for line in shown.text.strip("\n").split("\n"))
    actual = "\n".join(line.rstrip() for line in actual.strip("\n").split("\n"))
    if expected != actual:
        raise ExampleFailed(
            f"\n{shown.where} shows what {block.where} gives, but sqlml gives something else.\n"
            f"  shown:\n{textwrap.indent(expected, '    ')}\n  sqlml:\n{textwrap.indent(actual, '    ')}"
        )


def run_page(page: Page, folder, *, include_slow: bool) -> PageRun:
    __tracebackhide__ = True
    """Run the page's setups and SQL examples in order, in ``folder``, on a fresh connection."""
    run = PageRun(page, include_slow)
    previous = os.getcwd()
    os.chdir(folder)
    con = sqlml.connect()
    try:
        last_sql: tuple[Block, Outcome] | None = None
        items = page.items
        for position, block in enumerate(items):
            following = next((b for b in items[position + 1 :] if b.kind == "block"), None)
            if block.kind == "setup":
                if block.language == "python":
                    run_python(block, {"con": con, "sqlml": sqlml})
                else:
                    run_sql(con, block)
                continue
            if "skip" in block.directives:
                run.skipped.append((block, block.directives["skip"]))
                continue
            if "slow" in block.directives and not include_slow:
                run.skipped.append((block, "slow"))
                continue
            if block.language == "sql":
                outcome = run_sql(con, block, expect_error="raises" in block.directives)
                if "raises" in block.directives:
                    check_shown(block, following, printed(outcome.error), "raises")
                last_sql = (block, outcome)
                run.ran.append(block)
            elif block.language == "python" and "run" in block.directives:
                run_python(block, {"__name__": "__docs__"})
                run.ran.append(block)
            elif "output" in block.directives:
                if last_sql is None or last_sql[1].columns is None:
                    raise ExampleFailed(f"\n{block.where}: marked 'output' but no SQL query result comes before it")
                source, outcome = last_sql
                check_shown(source, block, render(outcome.columns, outcome.rows, "table"), "output")
    finally:
        con.close()
        os.chdir(previous)
    return run


def main(argv: list[str]) -> int:
    """``python -m tests.docs.runner [--slow] [PAGE ...]``: run pages' examples, say what ran."""
    import sys
    import tempfile
    import time
    from pathlib import Path

    import torch

    from .pages import all_pages, parse, relative

    torch.set_num_threads(1)  # as the tests run (tests/torch_threads.py)
    include_slow = "--slow" in argv
    paths = [Path(a).resolve() for a in argv if a != "--slow"] or all_pages()
    failed = 0
    for path in paths:
        page = parse(path)
        if not page.blocks_of("sql") and not any("run" in b.directives for b in page.blocks):
            continue
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as folder:
            try:
                run = run_page(page, folder, include_slow=include_slow)
            except ExampleFailed as error:
                failed += 1
                print(f"FAILED {relative(path)}{error}", file=sys.stderr)
                continue
        print(f"{relative(path)}: {len(run.ran)} ran, {len(run.skipped)} not run, {time.perf_counter() - started:.1f}s")
        for block, why in run.skipped:
            print(f"    not run: {block.where}: {why}")
    return 1 if failed else 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
