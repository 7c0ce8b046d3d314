"""Data for bench/validation.py: the 1M x 10 spans, injected-anomaly batches, clean batches.

The ten columns follow the TFDV comparison in shared/research/data_validation.md: a
unique id, a normal with 2% NULLs, a lognormal, a uniform, two integer columns, three
string columns of low / mid / high cardinality, and a 0/1 flag (the label). NULLs are
real Arrow NULLs and NaN values are real NaNs (Arrow keeps them apart; pandas does not).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

LABEL = "b_flag"


def make(rows: int, seed: int, *, drift: bool = False, id_offset: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    f_norm = rng.normal(5.0 if drift else 0.0, 1.0, rows)
    f_norm_null = rng.random(rows) < (0.10 if drift else 0.02)
    low_cats = np.array(["a", "b", "c", "d", "e"] + (["zz_new"] if drift else []))
    c_low = low_cats[rng.integers(0, len(low_cats), rows)]
    c_low_null = rng.random(rows) < 0.01
    mid = rng.zipf(1.3, rows) % 200
    return pa.table({
        "id": pa.array(np.arange(rows, dtype=np.int64) + id_offset),
        "f_norm": pa.array(f_norm, mask=f_norm_null),
        "f_lognorm": pa.array(rng.lognormal(0, 1, rows)),
        "f_uniform": pa.array(rng.uniform(0, 100, rows)),
        "i_small": pa.array(rng.integers(0, 101, rows).astype(np.int64)),
        "i_count": pa.array(rng.poisson(3, rows).astype(np.int64)),
        "c_low": pa.array(c_low, mask=c_low_null),
        "c_mid": pa.array(np.char.add("cat_", mid.astype(str))),
        "c_high": pa.array(np.char.add("u_", rng.integers(0, 100_000, rows).astype(str))),
        LABEL: pa.array((rng.random(rows) < (0.5 if drift else 0.3)).astype(np.int64)),
    })


def _replace(table: pa.Table, name: str, array) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, array)


def _every(table: pa.Table, share: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(table.num_rows) < share


def injections(clean: pa.Table) -> list[dict]:
    """One batch per anomaly type: (name, column, table, environment, sqlml type, TFDV type)."""
    n = clean.num_rows
    col = lambda name: clean.column(name).to_numpy(zero_copy_only=False)  # noqa: E731
    cases = []

    def case(name, column, table, sqlml_type, tfdv_type, environment=None):
        cases.append({"name": name, "column": column, "table": table, "sqlml": sqlml_type, "tfdv": tfdv_type, "environment": environment})

    case("missing column", "f_uniform", clean.drop_columns(["f_uniform"]), "SCHEMA_MISSING_COLUMN", "SCHEMA_MISSING_COLUMN")
    case("new column", "extra", clean.append_column("extra", pa.array(np.ones(n))), "SCHEMA_NEW_COLUMN", "SCHEMA_NEW_COLUMN")
    small = col("i_small").astype(str).astype(object)
    small[_every(clean, 0.01, 1)] = "n/a"
    case("type change (numbers as text)", "i_small", _replace(clean, "i_small", pa.array(small.astype(str))), "UNEXPECTED_DATA_TYPE", "UNEXPECTED_DATA_TYPE")
    mask = _every(clean, 0.30, 2) | np.isnan(col("f_norm").astype(float))
    case("presence below bound (30% NULL)", "f_norm", _replace(clean, "f_norm", pa.array(col("f_norm").astype(float), mask=mask)),
         "FEATURE_TYPE_LOW_FRACTION_PRESENT", "FEATURE_TYPE_LOW_FRACTION_PRESENT")
    low = col("c_low").astype(object)
    low[_every(clean, 0.05, 3) & (low != None)] = "zz_new"  # noqa: E711
    case("out-of-domain values (5%)", "c_low", _replace(clean, "c_low", pa.array(low, type=pa.string())),
         "ENUM_TYPE_UNEXPECTED_STRING_VALUES", "ENUM_TYPE_UNEXPECTED_STRING_VALUES")
    uni = col("f_uniform").copy()
    uni[_every(clean, 0.02, 4)] *= 1000
    case("out-of-range values (2% x1000)", "f_uniform", _replace(clean, "f_uniform", pa.array(uni)), "FLOAT_TYPE_BIG_FLOAT", "FLOAT_TYPE_BIG_FLOAT")
    logn = col("f_lognorm").copy()
    logn[_every(clean, 0.01, 5)] = np.nan
    case("NaN values (1%)", "f_lognorm", _replace(clean, "f_lognorm", pa.array(logn)), "FLOAT_TYPE_HAS_NAN", "FLOAT_TYPE_HAS_NAN")
    logn = col("f_lognorm").copy()
    logn[_every(clean, 0.001, 6)] = np.inf
    case("infinite values (0.1%)", "f_lognorm", _replace(clean, "f_lognorm", pa.array(logn)), "FLOAT_TYPE_HAS_INF", "FLOAT_TYPE_HAS_INF")
    case("row count (empty batch)", None, clean.slice(0, 0), "DATASET_LOW_NUM_EXAMPLES", "DATASET_LOW_NUM_EXAMPLES")
    ids = col("id").copy()
    ids[1:1000] = ids[0]
    case("uniqueness violated (duplicate ids)", "id", _replace(clean, "id", pa.array(ids)), "UNIQUENESS_VIOLATED", None)
    mid = col("c_mid").astype(object)
    mid[_every(clean, 0.15, 7)] = "cat_1"
    case("categorical drift (cat_1 +15 pts)", "c_mid", _replace(clean, "c_mid", pa.array(mid, type=pa.string())),
         "COMPARATOR_L_INFTY_HIGH", "COMPARATOR_L_INFTY_HIGH")
    norm = col("f_norm").astype(float) + 0.5
    case("numeric drift (f_norm +0.5 sd)", "f_norm", _replace(clean, "f_norm", pa.array(norm, mask=np.isnan(norm))),
         "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH", "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH")
    low = col("c_low").astype(object)
    low[_every(clean, 0.04, 8)] = None
    case("missing-rate shift (c_low 1% -> 5% NULL)", "c_low", _replace(clean, "c_low", pa.array(low, type=pa.string())), "MISSING_RATE_SHIFT", None)
    count = col("i_count") + (_every(clean, 0.5, 9)).astype(np.int64)
    case("mean shift (i_count +0.5)", "i_count", _replace(clean, "i_count", pa.array(count)), "MEAN_SHIFT", None)
    logn = col("f_lognorm") * 1.5
    serving = _replace(clean, "f_lognorm", pa.array(logn)).drop_columns([LABEL])
    case("training/serving skew (f_lognorm x1.5)", "f_lognorm", serving, "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH",
         "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH", environment="serving")
    return cases


def clean_batches(clean: pa.Table, small: int, small_rows: int) -> list[dict]:
    """Batches from the training distribution: a whole fresh span, serving without the label, small batches."""
    batches = [
        {"name": "fresh span, same distribution", "table": clean, "environment": None},
        {"name": "serving batch without the label", "table": clean.slice(0, clean.num_rows // 2).drop_columns([LABEL]), "environment": "serving"},
    ]
    rng = np.random.default_rng(11)
    for i in range(small):
        rows = np.sort(rng.choice(clean.num_rows, small_rows, replace=False))
        batches.append({"name": f"{small_rows}-row batch {i + 1}", "table": clean.take(rows), "environment": None, "small": True})
    return batches


def write(table: pa.Table, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return str(path)
