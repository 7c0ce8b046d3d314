"""Runs the golden statement fixtures: ``tests/statements/<statement>.sql``, one file per statement.

Each case (read by ``tests/sqlfixtures.py``) is header lines, the statement, then a check
query. Keys:

    title      what the case shows
    setup      SQL run first, on a fresh database (repeatable, run in order)
    clip       a file name: a short lossless video (``CLIP_FRAMES`` frames) is written there
    expect     the check query's rows after the statement, as a JSON list of lists
    error      a class of ``sqlml.errors`` the statement must raise; the check query
               must then give the same rows before and after (nothing half-written)

``{tmp}`` in any SQL is the case's own temporary folder (files the statements write or
read); the database is a fresh in-memory one. The check query may read ``result``: the rows the
statement returned (a table registered on the connection; absent when it returns none).
"""

from __future__ import annotations

import datetime
import decimal
import json
from pathlib import Path

import sqlml
from sqlml import errors
from tests.sqlfixtures import Case, load_cases

FOLDER = Path(__file__).parent
CLIP_FRAMES, CLIP_HEIGHT, CLIP_WIDTH = 4, 16, 24


def statement_cases() -> list[Case]:
    return load_cases(FOLDER)


def plain(value):
    """A fetched value as JSON would give it back."""
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (datetime.date, datetime.time, datetime.datetime, bytes)):
        return str(value)
    return value


def rows(con, query: str) -> list:
    return plain(con.sql(query).fetchall())


def run(con, sql: str):
    """Run ``sql``; the rows it returned as an Arrow table, or None."""
    result = con.sql(sql)
    return None if result is None else result.to_arrow_table()


def write_clip(path: Path) -> None:
    """Frame i is one flat colour, (40 i, 100, 200 - 40 i) in RGB; FFV1 keeps it exactly."""
    import cv2
    import numpy as np

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 10.0, (CLIP_WIDTH, CLIP_HEIGHT))
    assert writer.isOpened()
    for i in range(CLIP_FRAMES):
        frame = np.full((CLIP_HEIGHT, CLIP_WIDTH, 3), (200 - 40 * i, 100, 40 * i), dtype=np.uint8)  # BGR
        writer.write(frame)
    writer.release()


def run_case(case: Case, tmp_path: Path) -> None:
    def filled(sql: str) -> str:
        return sql.replace("{tmp}", str(tmp_path))

    for name in case.values("clip"):
        write_clip(tmp_path / name)
    statement, check = (filled(s) for s in case.statements)
    con = sqlml.connect()
    try:
        for setup in case.values("setup"):
            run(con, filled(setup))
        error = case.options.get("error")
        if error:
            expected = getattr(errors, error)
            assert isinstance(expected, type) and issubclass(expected, errors.SqlmlError), error
            before = rows(con, check)
            try:
                run(con, statement)
            except expected:
                pass
            else:
                raise AssertionError(f"{case.id}: expected {error}, nothing was raised")
            assert rows(con, check) == before, f"{case.id}: the failed statement changed the catalog"
        else:
            result = run(con, statement)
            if result is not None:
                con.duckdb.register("result", result)
            got, expected_rows = rows(con, check), json.loads(case.options["expect"])
            assert got == expected_rows, f"{case.id}: the check query gave\n{json.dumps(got)}\nexpected\n{json.dumps(expected_rows)}"
    finally:
        con.close()
