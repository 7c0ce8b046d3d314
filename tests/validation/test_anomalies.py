"""Each anomaly type on small crafted tables, with the right type, column and evidence."""

import pytest

from tests.validation.conftest import anomalies, details


def test_the_training_data_itself_conforms(shop):
    assert anomalies(shop, "train") == []
    assert anomalies(shop, "SELECT * FROM train USING SAMPLE 50% (bernoulli, 7)", baseline="train") == []


def test_missing_and_new_columns(shop):
    found = anomalies(shop, "SELECT * EXCLUDE (qty), 1 AS extra FROM train")
    assert ("qty", "SCHEMA_MISSING_COLUMN") in found and ("extra", "SCHEMA_NEW_COLUMN") in found
    severities = {r["anomaly_type"]: r["severity"] for r in details(shop, "SELECT * EXCLUDE (qty), 1 AS extra FROM train")}
    assert severities == {"SCHEMA_MISSING_COLUMN": "error", "SCHEMA_NEW_COLUMN": "warning"}


def test_renamed_column_is_reported_as_such(shop):
    rows = details(shop, "SELECT * EXCLUDE (color), color AS colour FROM train")
    missing = next(r for r in rows if r["anomaly_type"] == "SCHEMA_MISSING_COLUMN")
    new = next(r for r in rows if r["anomaly_type"] == "SCHEMA_NEW_COLUMN")
    assert missing["column_name"] == "color" and "renamed to 'colour'" in missing["description"]
    assert "renamed from 'color'" in new["description"]


def test_type_change_with_uncastable_examples(shop):
    rows = details(shop, "SELECT * REPLACE (CASE WHEN id % 100 = 0 THEN 'n/a' ELSE CAST(qty AS VARCHAR) END AS qty) FROM train")
    (row,) = [r for r in rows if r["column_name"] == "qty"]
    assert row["anomaly_type"] == "UNEXPECTED_DATA_TYPE" and row["severity"] == "error"
    assert row["observed"] == "VARCHAR" and row["expected"] == "INTEGER"
    assert "20 of 2,000 values are not BIGINT" in row["description"]
    assert row["examples"] == ["n/a (20)"]


def test_integers_where_floats_are_expected_are_fine(shop):
    assert anomalies(shop, "SELECT * REPLACE (CAST(amount AS BIGINT) AS amount) FROM train") == []


def test_presence_below_bound_and_not_present(shop):
    found = anomalies(shop, "SELECT * REPLACE (CASE WHEN id % 2 = 0 THEN NULL ELSE sometimes END AS sometimes) FROM train")
    assert found == [("sometimes", "FEATURE_TYPE_LOW_FRACTION_PRESENT")]
    found = anomalies(shop, "SELECT * REPLACE (NULL::DOUBLE AS amount) FROM train")
    assert found == [("amount", "FEATURE_TYPE_NOT_PRESENT")]


def test_a_few_more_nulls_in_a_small_batch_are_not_an_anomaly(shop):
    # 3 NULLs in 100 rows where 2% are normal: chance, not a finding
    assert anomalies(shop, "SELECT * REPLACE (CASE WHEN id % 33 = 1 THEN NULL ELSE sometimes END AS sometimes) FROM train WHERE id < 100") == []


def test_out_of_domain_values_with_fraction_and_examples(shop):
    rows = details(shop, "SELECT * REPLACE (CASE WHEN id % 10 = 0 THEN 'purple' WHEN id % 25 = 1 THEN 'pink' ELSE color END AS color) FROM train")
    (row,) = rows
    assert (row["column_name"], row["anomaly_type"]) == ("color", "ENUM_TYPE_UNEXPECTED_STRING_VALUES")
    assert row["metric"] == pytest.approx(280 / 2000)
    assert row["examples"] == ["purple (200)", "pink (80)"]


def test_out_of_range_values(shop):
    found = anomalies(shop, "SELECT * REPLACE (CASE WHEN id % 20 = 0 THEN amount * 1000 + 1 ELSE amount END AS amount) FROM train")
    assert found == [("amount", "FLOAT_TYPE_BIG_FLOAT")]
    found = anomalies(shop, "SELECT * REPLACE (CASE WHEN id % 20 = 0 THEN -5.0 ELSE amount END AS amount) FROM train")
    assert found == [("amount", "FLOAT_TYPE_SMALL_FLOAT")]
    rows = details(shop, "SELECT * REPLACE (CASE WHEN id % 20 = 0 THEN 999 ELSE qty END AS qty) FROM train")
    assert [(r["column_name"], r["anomaly_type"]) for r in rows] == [("qty", "INT_TYPE_BIG_INT")]
    assert rows[0]["examples"] == ["999"]


def test_bounds_are_not_the_exact_training_extremes(shop):
    # the training max of qty is 49; 55 is inside the inferred bounds (quantiles widened)
    assert anomalies(shop, "SELECT * REPLACE (CASE WHEN id % 20 = 0 THEN 55 ELSE qty END AS qty) FROM train") == []


def test_nan_and_infinity(shop):
    found = anomalies(shop, "SELECT * REPLACE (CASE WHEN id = 5 THEN 'nan'::DOUBLE WHEN id = 6 THEN 'inf'::DOUBLE ELSE amount END AS amount) FROM train")
    assert found == [("amount", "FLOAT_TYPE_HAS_NAN"), ("amount", "FLOAT_TYPE_HAS_INF")]


def test_row_count_out_of_bounds(shop):
    assert anomalies(shop, "SELECT * FROM train WHERE false") == [(None, "DATASET_LOW_NUM_EXAMPLES")]
    shop.sql("ALTER DATA SCHEMA shop SET (min_rows := 10, max_rows := 500)")
    assert anomalies(shop, "SELECT * FROM train") == [(None, "DATASET_HIGH_NUM_EXAMPLES")]
    assert anomalies(shop, "SELECT * FROM train LIMIT 5") == [(None, "DATASET_LOW_NUM_EXAMPLES")]


def test_uniqueness_violated_with_duplicate_examples(shop):
    rows = details(shop, "SELECT * FROM train UNION ALL SELECT * FROM train WHERE id IN (3, 4)")
    (row,) = rows
    assert (row["column_name"], row["anomaly_type"]) == ("id", "UNIQUENESS_VIOLATED")
    assert row["examples"] == ["3 (2)", "4 (2)"] and row["metric"] == 2


def test_list_lengths(shop):
    found = anomalies(shop, "SELECT * REPLACE (CASE WHEN id = 1 THEN [1.0] WHEN id = 2 THEN [1.0, 2, 3, 4] ELSE vec END AS vec) FROM train")
    assert found == [("vec", "FEATURE_TYPE_LOW_NUMBER_VALUES"), ("vec", "FEATURE_TYPE_HIGH_NUMBER_VALUES")]


def test_categorical_drift_is_l_infinity(shop):
    rows = details(shop, "SELECT * REPLACE (CASE WHEN id % 3 = 1 THEN 'red' ELSE color END AS color) FROM train", baseline="train")
    drift = [r for r in rows if r["family"] == "drift"]
    assert [(r["column_name"], r["anomaly_type"]) for r in drift] == [("color", "COMPARATOR_L_INFTY_HIGH")]
    assert drift[0]["metric"] == pytest.approx(1 / 3, abs=0.01) and drift[0]["severity"] == "warning"


def test_numeric_drift_is_jensen_shannon_and_mean_shift(shop):
    rows = details(shop, "SELECT * REPLACE (amount + 40 AS amount) FROM train", baseline="train")
    types = {(r["column_name"], r["anomaly_type"]) for r in rows}
    assert ("amount", "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH") in types
    assert ("amount", "MEAN_SHIFT") in types
    jsd = next(r for r in rows if r["anomaly_type"] == "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH")
    assert jsd["metric"] > jsd["threshold"] > 0


def test_missing_rate_shift_against_a_baseline(shop):
    shop.sql("CREATE TABLE later AS SELECT * REPLACE (CASE WHEN id % 10 = 0 THEN NULL ELSE sometimes END AS sometimes) FROM train")
    shop.sql("CREATE DATA SCHEMA loose FROM later")  # tolerates 10% NULLs: only the comparison sees the change
    rows = details(shop, "later", schema="loose", baseline="train")
    assert [(r["column_name"], r["anomaly_type"]) for r in rows] == [("sometimes", "MISSING_RATE_SHIFT")]


def test_results_can_be_saved_as_a_table(shop):
    shop.sql("CREATE TABLE findings AS SELECT * FROM ml_validate('SELECT * EXCLUDE (qty) FROM train', 'shop')")
    assert shop.sql("SELECT column_name, anomaly_type, schema_name, schema_version FROM findings").fetchall() == [
        ("qty", "SCHEMA_MISSING_COLUMN", "shop", 1)
    ]


def test_anomaly_types_are_listed(con):
    types = dict(con.sql("SELECT anomaly_type, severity FROM ml_anomaly_types()").fetchall())
    assert types["ENUM_TYPE_UNEXPECTED_STRING_VALUES"] == "error" and types["COMPARATOR_L_INFTY_HIGH"] == "warning"


def test_drift_and_bounds_read_columns_of_later_scan_groups(shop, monkeypatch):
    from sqlml.validation import scan

    monkeypatch.setattr(scan, "COLUMNS_PER_SCAN", 2)  # amount's finite values live in the second group
    rows = details(shop, "SELECT * REPLACE (amount + 400 AS amount) FROM train", baseline="train")
    types = {(r["column_name"], r["anomaly_type"]) for r in rows}
    assert {("amount", "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH"), ("amount", "FLOAT_TYPE_BIG_FLOAT")} <= types
    assert anomalies(shop, "train", baseline="train") == []
