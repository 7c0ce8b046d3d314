"""Every statement against its golden fixture file (see runner.py for the format)."""

from __future__ import annotations

import pytest

from .runner import run_case, statement_cases

CASES = statement_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_statement_fixture(case, tmp_path):
    run_case(case, tmp_path)
