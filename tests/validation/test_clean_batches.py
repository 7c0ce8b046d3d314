"""Statistical honesty: batches drawn from the training distribution raise nothing.

Random halves of one table, and many 100-row batches, validated with drift comparisons
against the other half: every threshold accounts for the batch size, so there must be
zero anomalies (the per-test false-alarm rate is 1e-6).
"""

from sqlml.validation import api
from tests.validation.synthetic import create_mixed, uniform


def test_random_halves_and_small_batches_raise_nothing(con):
    create_mixed(con, "data", 20_000)
    half = uniform("id", "split")
    con.sql(f"CREATE TABLE half_a AS SELECT * FROM data WHERE {half} < 0.5")
    con.sql(f"CREATE TABLE half_b AS SELECT * FROM data WHERE {half} >= 0.5")
    con.sql("CREATE DATA SCHEMA mixed FROM half_a")
    assert api.validate(con, "half_b", "mixed", baseline="half_a") == []
    assert api.validate(con, "half_a", "mixed", baseline="half_b") == []
    con.sql("CREATE TABLE batches AS SELECT *, row_number() OVER (ORDER BY id) // 100 AS batch FROM half_b")
    found = []
    for b in range(0, 90, 6):
        found += api.validate(con, f"SELECT * EXCLUDE (batch) FROM batches WHERE batch = {b}", "mixed", baseline="half_a")
    assert found == []
    # the same batches in the serving environment: skew against the training statistics
    for b in range(1, 90, 22):
        found += api.validate(con, f"SELECT * EXCLUDE (batch) FROM batches WHERE batch = {b}", "mixed", environment="serving")
    assert found == []


def test_the_same_comparisons_catch_a_real_shift(con):
    create_mixed(con, "data", 20_000)
    con.sql("CREATE DATA SCHEMA mixed FROM data")
    con.sql("CREATE TABLE shifted AS SELECT * REPLACE (CASE WHEN b_flag = 0 AND id % 4 = 0 THEN 1 ELSE b_flag END AS b_flag) FROM data")
    found = {(a.column_name, a.anomaly_type) for a in api.validate(con, "shifted", "mixed", baseline="data")}
    assert ("b_flag", "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH") in found
