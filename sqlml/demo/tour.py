"""Running the tour: print what happens, show SQL and its results, keep going."""

from __future__ import annotations

import importlib
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlml.demo import CHAPTERS


@dataclass
class Tour:
    con: object  # sqlml.Connection
    db_path: str
    out_dir: Path
    quick: bool = False  # smaller data and fewer epochs (tests)
    stream: object = field(default_factory=lambda: sys.stdout)
    facts: dict = field(default_factory=dict)  # what chapters report, for tests and later chapters

    def say(self, text: str = "") -> None:
        print(text, file=self.stream, flush=True)

    def heading(self, text: str) -> None:
        self.say()
        self.say(text)
        self.say("=" * len(text))

    def run(self, sql: str, params=None):
        """Run SQL, echoing it; returns what Connection.sql returns."""
        self.say()
        for line in sql.strip().splitlines():
            self.say(f"  sqlml> {line}")
        return self.con.sql(sql, params)

    def show(self, sql: str, params=None, max_rows: int = 20):
        """Run a query, echo it and print its result as a table; returns the rows."""
        from sqlml.render import render

        relation = self.run(sql, params)
        if relation is None:
            return None
        columns = relation.columns
        rows = relation.fetchall()
        self.say(render(columns, rows[:max_rows], mode="table", total=len(rows)))
        return rows


def run_tour(db_path: str, *, chapters=None, quick: bool = False, out_dir: str | None = None, stream=None) -> Tour:
    import sqlml

    out = Path(out_dir or (Path(db_path).resolve().parent / "sqlml_demo_out"))
    out.mkdir(parents=True, exist_ok=True)
    if os.path.exists(db_path):
        os.remove(db_path)
    con = sqlml.connect(db_path)
    tour = Tour(con, db_path, out, quick=quick, stream=stream or sys.stdout)
    selected = CHAPTERS if chapters is None else [CHAPTERS[i] for i in chapters]
    try:
        for module_name in selected:
            module = importlib.import_module(module_name)
            started = time.perf_counter()
            tour.heading(module.TITLE)
            module.run(tour)
            tour.say(f"\n  [chapter done in {time.perf_counter() - started:.1f}s]")
        tour.heading("Where to go from here")
        tour.say(f"The database is {db_path}. Open it with:")
        tour.say(f"    sqlml shell {db_path}")
        tour.say("or, for the pure-SQL macros in the official DuckDB shell (pip install duckdb-cli):")
        tour.say(f"    duckdb {db_path} -c \".read sql/install.sql\" -c \"SELECT * FROM ml_objects('model')\"")
    finally:
        con.close()
    return tour
