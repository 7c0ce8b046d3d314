"""Issue 15, row 7 (ours: threads and sizes) and row 8's ``epochs := -5``: every option has a range.

Values outside the documented range (docs: "Limits and guarantees") are refused at parse
time with an InvalidOptionError naming the option, before any data is read.
"""

from __future__ import annotations

import pytest

from sqlml.errors import InvalidOptionError
from sqlml.training.options import settle

QUERY = "SELECT x, label FROM d"


@pytest.fixture
def data(con):
    con.sql("CREATE TABLE d AS SELECT range AS id, (range % 7)::DOUBLE AS x, CASE WHEN range % 2 = 0 THEN 'a' ELSE 'b' END AS label FROM range(100)")
    return con


@pytest.mark.parametrize(
    "options, option",
    [
        ("threads := 100000", "threads"),  # the issue's: exhausted the machine's threads
        ("threads := 0", "threads"),
        ("epochs := 1000000", "epochs"),
        ("epochs := -5", "epochs"),
        ("batch_size := 100000000", "batch_size"),
        ("block_rows := 100000000", "block_rows"),
        ("shuffle_window := 10000000", "shuffle_window"),
        ("prefetch := 1000", "prefetch"),
        ("max_categories := 100000000", "max_categories"),
        ("seed := -1", "seed"),
        ("weight_decay := 1e999", "weight_decay"),
        ("momentum := 5", "momentum"),
        ("early_stopping := 10000000, validation_split := 0.2", "early_stopping"),
        ("input_shape := [100000, 100000]", "input_shape"),
        ("hidden := [100000000]", "hidden"),
        ("hidden := 0", "hidden"),
        ("architecture := 'cnn', input_shape := [1, 1], kernel_size := 101", "kernel_size"),
        ("strategy := 'data_parallel', workers := 100000", "workers"),
        ("strategy := 'spill', device_memory := 1e999", "device_memory"),
        ("strategy := 'spill', device_memory := '10000 TiB'", "device_memory"),
        ("strategy := 'spill', device_memory := '1MB', shards := 100000", "shards"),
        ("strategy := 'pipeline', stages := 100000", "stages"),
        ("strategy := 'pipeline', micro_batches := 100000", "micro_batches"),
    ],
)
def test_create_model_options_out_of_range(data, options, option):
    with pytest.raises(InvalidOptionError) as info:
        data.sql(f"CREATE MODEL m WITH ({options}) AS {QUERY}")
    assert info.value.option == option, str(info.value)
    assert data.sql("SELECT count(*) FROM sqlml.models").fetchall() == [(0,)]


def test_threads_bound_is_this_machines(data):
    from sqlml.bounds import max_threads

    assert settle({"threads": max_threads()})["threads"] == max_threads()
    with pytest.raises(InvalidOptionError, match=f"from 1 to {max_threads():,}"):
        settle({"threads": max_threads() + 1})
    data.sql(f"CREATE MODEL m WITH (epochs := 1, threads := 2) AS {QUERY}")


@pytest.mark.parametrize(
    "options, option",
    [
        ("workers := 100000", "workers"),
        ("unit_batches := 0", "unit_batches"),
    ],
)
def test_grid_options_out_of_range(data, options, option):
    with pytest.raises(InvalidOptionError) as info:
        data.sql(f"CREATE MODELS g FOR (lr IN (0.1, 0.2)) WITH ({options}) AS {QUERY}")
    assert info.value.option == option


def test_grid_size_is_bounded(data):
    values = ", ".join(str(i) for i in range(1, 41))
    with pytest.raises(InvalidOptionError, match=r"64,000 combinations; at most 1,000"):
        data.sql(f"CREATE MODELS g FOR (seed IN ({values}), shuffle_window IN ({values}), prefetch IN ({values})) AS {QUERY}")


@pytest.mark.parametrize(
    "options, option",
    [
        ("epochs := -5", "epochs"),  # the issue's: accepted on main
        ("epochs := 10000000", "epochs"),
        ("lr := -1", "lr"),
        ("lr := 1e999", "lr"),
        ("l2 := -1", "l2"),
        ("seed := -3", "seed"),
        ("gold_weight := -1", "gold_weight"),
        ("method := 'dawid_skene', max_iter := 0", "max_iter"),
        ("method := 'dawid_skene', prior_accuracy := 1.5", "prior_accuracy"),
        ("method := 'dawid_skene', tol := -1", "tol"),
        ("method := 'triplet', max_triplets := 0", "max_triplets"),
        ("abstain := 'sometimes'", "abstain"),
    ],
)
def test_label_model_options_out_of_range(con, options, option):
    con.sql("CREATE TABLE c AS SELECT range AS id FROM range(50)")
    con.sql("CREATE LABELING FUNCTION lf ON c WITH (classes := ['p', 'q']) AS CASE WHEN id > 20 THEN 'p' END")
    with pytest.raises(InvalidOptionError) as info:
        con.sql(f"CREATE LABEL MODEL lm ON c KEY id WITH ({options})")
    assert info.value.option == option
    assert con.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'lm'").fetchall() == [(0,)]


@pytest.mark.parametrize(
    "statement, option",
    [
        ("CREATE DATA SCHEMA s FROM d WITH (drift_jsd := 5)", "drift_jsd"),
        ("CREATE DATA SCHEMA s FROM d WITH (drift_linf := -1)", "drift_linf"),
        ("CREATE DATA SCHEMA s FROM d WITH (significance := 0)", "significance"),
        ("CREATE DATA SCHEMA s FROM d WITH (max_domain_size := 1e999)", "max_domain_size"),
        ("CREATE DATA SCHEMA s FROM d WITH (min_rows := 10, max_rows := 5)", "min_rows"),
    ],
)
def test_data_schema_options_out_of_range(data, statement, option):
    with pytest.raises(InvalidOptionError) as info:
        data.sql(statement)
    assert info.value.option == option
