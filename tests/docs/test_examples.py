"""Every SQL example in README.md and docs/ runs, and what a page shows sqlml printing is
what sqlml prints. How to mark an example that cannot run: see tests/docs/pages.py."""

from __future__ import annotations

import pytest

from .pages import all_pages, parse, relative
from .runner import run_page

PAGES = [parse(path) for path in all_pages()]
RUNNABLE = [p for p in PAGES if p.blocks_of("sql") or any("run" in b.directives for b in p.blocks)]
WITH_SLOW = [p for p in RUNNABLE if any("slow" in b.directives for b in p.blocks)]


def ids(page):
    return relative(page.path)


@pytest.mark.parametrize("page", RUNNABLE, ids=ids)
def test_page_examples_run(page, tmp_path, clean_registries):
    run = run_page(page, tmp_path, include_slow=False)
    assert run.ran, f"{ids(page)}: no example ran"


@pytest.mark.slow
@pytest.mark.parametrize("page", WITH_SLOW, ids=ids)
def test_page_examples_run_with_slow_ones(page, tmp_path, clean_registries):
    run = run_page(page, tmp_path, include_slow=True)
    assert not [b for b, why in run.skipped if why == "slow"]


def test_the_docs_have_runnable_sql():
    """A guard against a parser that finds nothing: most SQL examples run."""
    sql = [b for p in PAGES for b in p.blocks_of("sql")]
    skipped = [b for b in sql if "skip" in b.directives]
    assert len(sql) >= 30 and len(skipped) <= len(sql) // 5, (len(sql), [b.where for b in skipped])


def test_python_examples_compile():
    for page in PAGES:
        for block in page.blocks_of("python"):
            try:
                compile(block.text, block.where, "exec")
            except SyntaxError as error:
                pytest.fail(f"{block.where}: {error}")


def test_blocks_say_their_language():
    """An unlabeled block is neither run nor highlighted: say sql, python, sh or text."""
    unlabeled = [b.where for p in PAGES for b in p.blocks if not b.language]
    assert unlabeled == []
