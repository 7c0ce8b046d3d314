"""The SQL front end's cost on point queries: sqlml vs raw DuckDB, same process, same data.

Plain SQL with no sqlml word and no ml_ call takes the fast path (a regular expression,
no parsing). Target: overhead within 10% of raw duckdb on a point query.

    python bench/frontend.py [--rows 1000000] [--queries 2000] [--out bench/results/frontend.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import duckdb

import sqlml


def timed(fn, n: int) -> float:
    started = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - started) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "frontend.json"))
    args = parser.parse_args()

    raw = duckdb.connect()
    con = sqlml.connect()
    setup = f"CREATE TABLE kv AS SELECT range AS id, md5(range::VARCHAR) AS payload FROM range({args.rows})"
    raw.execute(setup)
    con.sql(setup)
    query = "SELECT payload FROM kv WHERE id = ?"

    cases = {
        "duckdb sql()": lambda i: raw.sql(query, params=[i % args.rows]).fetchall(),
        "sqlml sql()": lambda i: con.sql(query, params=[i % args.rows]).fetchall(),
        "duckdb execute()": lambda i: raw.execute(query, [i % args.rows]).fetchall(),
        "sqlml execute()": lambda i: con.execute(query, [i % args.rows]).fetchall(),
    }
    samples = {name: [] for name in cases}
    for _ in range(args.rounds):  # interleaved rounds, so load on the machine hits all cases alike
        for name, fn in cases.items():
            samples[name].append(timed(fn, args.queries))
    result = {
        name: {"best_us": min(v) * 1e6, "median_us": statistics.median(v) * 1e6} for name, v in samples.items()
    }
    ratios = {
        "sql": result["sqlml sql()"]["median_us"] / result["duckdb sql()"]["median_us"],
        "execute": result["sqlml execute()"]["median_us"] / result["duckdb execute()"]["median_us"],
        "sql_best": result["sqlml sql()"]["best_us"] / result["duckdb sql()"]["best_us"],
        "execute_best": result["sqlml execute()"]["best_us"] / result["duckdb execute()"]["best_us"],
    }
    # The front end's own work per plain query, timed alone (no DuckDB in it, so machine
    # load moves it far less than the end-to-end medians above).
    from sqlml.query import classify

    relation = raw.sql(query, params=[0])
    n = 20000
    front_end_us = timed(lambda i: (classify.needs_front_end(query), classify.returns_rows(query), con.wrap(relation)), n) * 1e6
    ratios["front_end_share_of_point_query"] = front_end_us / result["duckdb sql()"]["best_us"]
    report = {
        "rows": args.rows,
        "front_end_us": front_end_us,
        "queries_per_round": args.queries,
        "rounds": args.rounds,
        "latency": result,
        "ratio_sqlml_over_duckdb": ratios,
    }
    for name, r in result.items():
        print(f"{name:<18} best {r['best_us']:8.1f} us   median {r['median_us']:8.1f} us")
    print(f"front end alone    {front_end_us:8.2f} us per plain query")
    for name, r in ratios.items():
        print(f"ratio sqlml/duckdb ({name}): {r:.3f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
