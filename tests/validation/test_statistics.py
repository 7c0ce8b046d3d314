"""ml_statistics: what one scan learns per column, stored by dataset and span, merged without rescans."""

import math

import pytest

from sqlml.validation import api, scan, sources, store
from sqlml.validation.statistics import merge_datasets


@pytest.fixture
def mixed(con):
    con.sql(
        """
        CREATE TABLE mixed AS SELECT
            i AS id,
            CASE WHEN i % 10 = 0 THEN NULL WHEN i = 7 THEN 'nan'::DOUBLE WHEN i = 8 THEN 'inf'::DOUBLE
                 WHEN i = 9 THEN '-inf'::DOUBLE ELSE (i % 50) / 4.0 END AS x,
            CASE WHEN i % 4 = 0 THEN 'a' WHEN i % 4 = 1 THEN 'bb' WHEN i % 4 = 2 THEN 'ccc' ELSE NULL END AS s,
            [1, 2, 3][1:(i % 3) + 1] AS l,
            DATE '2020-01-01' + CAST(i AS INTEGER) AS d,
            i % 2 = 0 AS b
        FROM range(1000) t(i)
        """
    )
    return "mixed"


def stats_by_column(con, source):
    rows = con.sql(f"SELECT * FROM ml_statistics('{source}')")
    return {r[0]: dict(zip(rows.columns, r, strict=True)) for r in rows.fetchall()}


def test_counts_missing_nan_inf_zeros(con, mixed):
    s = stats_by_column(con, mixed)
    x = s["x"]
    assert x["row_count"] == 1000 and x["count"] == 900 and x["missing"] == 100
    assert x["nan"] == 1 and x["inf"] == 2
    expected_zeros = con.sql("SELECT count(*) FROM mixed WHERE x = 0").fetchall()[0][0]
    assert x["zeros"] == expected_zeros
    assert x["missing_fraction"] == pytest.approx(0.1)


def test_moments_are_exact_over_finite_values(con, mixed):
    s = stats_by_column(con, mixed)["x"]
    mean, std, lo, hi = con.sql(
        "SELECT avg(x), stddev_samp(x), min(x), max(x) FROM mixed WHERE isfinite(x)"
    ).fetchall()[0]
    assert s["mean"] == pytest.approx(mean) and s["std"] == pytest.approx(std)
    assert (s["min"], s["max"]) == (lo, hi)


def test_quantiles_and_histograms(con, mixed):
    s = stats_by_column(con, mixed)["x"]
    median = con.sql("SELECT quantile_disc(x, 0.5) FROM mixed WHERE isfinite(x)").fetchall()[0][0]
    assert s["median"] == pytest.approx(median, rel=0.011)
    qs = [q["value"] for q in s["quantiles"]]
    assert qs == sorted(qs) and qs[0] == s["min"] and qs[-1] == s["max"]
    finite = 900 - 3
    assert sum(b["count"] for b in s["equal_width_histogram"]) == pytest.approx(finite)
    assert sum(b["count"] for b in s["quantile_histogram"]) == pytest.approx(finite)
    assert len(s["equal_width_histogram"]) == 10


def test_strings_lists_dates_booleans(con, mixed):
    s = stats_by_column(con, mixed)
    assert s["s"]["distinct_count"] == 3 and s["s"]["distinct_exact"]
    assert [t["value"] for t in s["s"]["top_values"]] == ["a", "bb", "ccc"]
    assert s["s"]["avg_length"] == pytest.approx((250 * 1 + 250 * 2 + 250 * 3) / 750)
    assert (s["l"]["min_length"], s["l"]["max_length"]) == (1, 3)
    assert s["d"]["min_value"] == "2020-01-01" and s["d"]["max_value"] == "2022-09-26"
    assert {t["value"]: t["count"] for t in s["b"]["top_values"]} == {"true": 500, "false": 500}
    assert s["id"]["kind"] == "integer" and s["s"]["kind"] == "string" and s["l"]["kind"] == "list"


def test_statistics_are_stored_and_readable_in_sql(con, mixed):
    con.sql("SELECT * FROM ml_statistics('mixed', dataset := 'demo', span := 'one')").fetchall()
    stored = con.sql("SELECT column_name, count, missing, mean FROM ml_stored_statistics('demo')").fetchall()
    assert ("x", 900, 100) == stored[1][:3]
    sets = con.sql("SELECT dataset, span, row_count FROM ml_statistics_sets()").fetchall()
    assert ("demo", "one", 1000) in sets
    con.sql("SELECT * FROM ml_statistics('mixed', store := false)").fetchall()
    assert len(con.sql("SELECT * FROM ml_statistics_sets() WHERE dataset = 'mixed'").fetchall()) == 0


def test_span_statistics_merge_to_the_whole_without_rescanning(con, mixed):
    for lo, hi in ((0, 300), (300, 700), (700, 1000)):
        api.statistics(con, f"SELECT * FROM mixed WHERE id >= {lo} AND id < {hi}", dataset="parts", span=f"{lo:04d}")
    merged = store.load_dataset(con.duckdb, "parts")
    whole = api.statistics(con, "mixed", store_result=False)
    assert merged.row_count == whole.row_count and merged.merged_from
    for name, w in whole.columns.items():
        m = merged.columns[name]
        assert (m.count, m.missing, m.nan, m.inf, m.zeros, m.min, m.max) == (w.count, w.missing, w.nan, w.inf, w.zeros, w.min, w.max)
        assert m.sketch.counts == w.sketch.counts and m.values == w.values
        if w.mean is not None:
            assert m.mean == pytest.approx(w.mean) and m.std == pytest.approx(w.std)
    sql_merged = {r[2]: r for r in con.sql("SELECT * FROM ml_merged_statistics('parts')").fetchall()}
    assert sql_merged["x"][6] == 900 and sql_merged["x"][1] == 3
    cols = con.sql("SELECT * FROM ml_merged_statistics('parts')").columns
    row = dict(zip(cols, sql_merged["x"], strict=True))
    assert row["mean"] == pytest.approx(whole.columns["x"].mean)
    assert row["std"] == pytest.approx(whole.columns["x"].std)
    assert row["median"] == pytest.approx(whole.columns["x"].quantile(0.5))
    assert row["distinct_count"] is not None
    s_row = dict(zip(cols, sql_merged["s"], strict=True))
    assert s_row["distinct_count"] == 3 and s_row["distinct_exact"]


def test_truncated_value_lists_merge_with_an_error_bound(con, monkeypatch):
    monkeypatch.setattr(scan, "MAX_VALUES", 5)
    from sqlml.validation import statistics

    monkeypatch.setattr(statistics, "MAX_VALUES", 5)
    con.sql("CREATE TABLE words AS SELECT 'w' || (i % 20) AS w, i FROM range(2000) t(i) WHERE i % 20 < 20 - (i % 7)")
    a = api.statistics(con, "SELECT * FROM words WHERE i < 1000", store_result=False)
    b = api.statistics(con, "SELECT * FROM words WHERE i >= 1000", store_result=False)
    whole = api.statistics(con, "words", store_result=False)
    merged = merge_datasets([a, b])
    col = merged.columns["w"]
    true_counts = dict(con.sql("SELECT w, count(*) FROM words GROUP BY w").fetchall())
    assert not col.values_exact and len(col.values) <= 5
    for value, count in col.values.items():
        assert count <= true_counts[value] <= count + col.values_floor
    unlisted = [c for v, c in true_counts.items() if v not in col.values]
    assert max(unlisted) <= col.values_floor
    assert whole.columns["w"].distinct == 20


def test_empty_and_all_null_sources(con):
    con.sql("CREATE TABLE empty (a INTEGER, b VARCHAR)")
    con.sql("CREATE TABLE nulls AS SELECT NULL::DOUBLE AS a, NULL::VARCHAR AS b FROM range(5)")
    e = stats_by_column(con, "empty")
    assert e["a"]["row_count"] == 0 and e["a"]["count"] == 0 and e["a"]["mean"] is None
    n = stats_by_column(con, "nulls")
    assert n["a"]["missing"] == 5 and n["a"]["quantiles"] is None and n["b"]["top_values"] is None


def test_files_and_queries_are_sources(con, tmp_path):
    path = tmp_path / "batch.csv"
    path.write_text("a,b\n1,x\n2,y\n3,\n")
    s = stats_by_column(con, str(path))
    assert s["a"]["count"] == 3 and s["b"]["missing"] == 1
    q = stats_by_column(con, "SELECT range AS v FROM range(10)")
    assert q["v"]["max"] == 9


def test_wide_tables_scan_in_column_groups(con, monkeypatch):
    monkeypatch.setattr(scan, "COLUMNS_PER_SCAN", 40)
    cols = ", ".join(f"i * {k} AS c{k}" for k in range(300))
    con.sql(f"CREATE TABLE wide AS SELECT {cols} FROM range(50) t(i)")
    stats = api.statistics(con, "wide", store_result=False)
    assert len(stats.columns) == 300
    assert stats.columns["c299"].max == 49 * 299 and stats.columns["c7"].mean == pytest.approx(24.5 * 7)


def test_resolve_rejects_unreadable_sources(con):
    from sqlml.errors import DataError

    with pytest.raises(DataError, match="cannot read data source"):
        sources.resolve(con.duckdb, "no_such_table")
    with pytest.raises(DataError):
        sources.resolve(con.duckdb, "  ")


def test_distinct_counts_are_exact_for_strings_and_estimated_for_integers(con):
    con.sql("CREATE TABLE big AS SELECT i, 'v' || (i % 5000) AS s FROM range(20000) t(i)")
    stats = api.statistics(con, "big", store_result=False)
    assert stats.columns["s"].distinct == 5000 and stats.columns["s"].distinct_exact
    assert math.isclose(stats.columns["i"].distinct, 20000, rel_tol=0.05) and not stats.columns["i"].distinct_exact


def test_read_only_connections_compute_without_storing(db_path):
    import sqlml

    with sqlml.connect(db_path) as con:
        con.sql("CREATE TABLE t AS SELECT range AS x FROM range(10)")
    with sqlml.connect(db_path, read_only=True) as ro:
        assert ro.sql("SELECT count FROM ml_statistics('t')").fetchall() == [(10,)]
        assert ro.sql("SELECT count(*) FROM ml_statistics_sets()").fetchall() == [(0,)]


def test_very_high_cardinality_strings_keep_top_candidates(con, monkeypatch):
    monkeypatch.setattr(scan, "EXACT_VALUES_LIMIT", 100)
    con.sql("CREATE TABLE h AS SELECT range AS i, CASE WHEN range % 10 = 0 THEN 'hot' ELSE 'k' || range END AS s FROM range(5000)")
    col = api.statistics(con, "h", store_result=False).columns["s"]
    assert not col.values_exact and not col.distinct_exact and col.values["hot"] == 500
    assert col.top_values(1) == [("hot", 500)]


@pytest.mark.parametrize(
    "expression",
    [
        "(i % 50) / 4.0 - 6",  # negative values: signed bucket keys
        "(i % 7) * 1000000000.0",  # few distinct values, far from zero: grouped by value
        "CASE WHEN i % 3 = 0 THEN 0.0 ELSE exp(i / 100.0) END",  # never negative, with zeros
    ],
)
def test_variance_from_the_sketch_query_matches_duckdb(con, expression):
    con.sql(
        f"CREATE TABLE v AS SELECT CASE WHEN i = 5 THEN 'nan'::DOUBLE WHEN i = 6 THEN '-inf'::DOUBLE "
        f"WHEN i % 11 = 0 THEN NULL ELSE {expression} END AS x FROM range(2000) t(i)"
    )
    x = api.statistics(con, "v", store_result=False).columns["x"]
    mean, std, finite = con.sql("SELECT avg(x), stddev_samp(x), count(x) FROM v WHERE isfinite(x)").fetchall()[0]
    assert (x.finite, x.nan, x.pos_inf, x.neg_inf) == (finite, 1, 0, 1)
    assert x.mean == pytest.approx(mean, rel=1e-12) and x.std == pytest.approx(std, rel=1e-9)


def test_wide_tables_get_exact_variance_too(con, monkeypatch):
    monkeypatch.setattr(scan, "SKETCHES_PER_SCAN", 2)
    con.sql("CREATE TABLE w AS SELECT i * 1.5 AS a, i % 7 AS b, -i AS c FROM range(100) t(i)")
    stats = api.statistics(con, "w", store_result=False)
    for name in "abc":
        std = con.sql(f"SELECT stddev_samp({name}) FROM w").fetchall()[0][0]
        assert stats.columns[name].std == pytest.approx(std, rel=1e-9)


def test_statistics_rows_have_the_declared_columns(con, mixed):
    from sqlml.validation.report import STATISTICS_COLUMNS, statistics_rows

    rows = statistics_rows(api.statistics(con, mixed, store_result=False))
    assert all(list(r) == [name for name, _ in STATISTICS_COLUMNS] for r in rows)
    assert con.sql(f"SELECT * FROM ml_statistics('{mixed}')").columns == [name for name, _ in STATISTICS_COLUMNS]
