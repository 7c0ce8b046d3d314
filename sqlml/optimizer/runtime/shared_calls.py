"""Shared model results: one model pass over the distinct inputs of several statements.

``sqlml.optimizer.runtime.multi_query`` groups the hoisted calls of statements that run together by what
they compute (function, constant arguments, model version). For each group this module
builds one TEMP table (see ``sqlml.optimizer.shared_results`` for how statements read it):

    k0 .. kN   the distinct inputs of every statement in the group (a UNION of their keys);
               only when a statement must compare them (it runs after a write)
    __ml_h     hash(call signature, version token, k0 .. kN): the prediction cache's key
    __ml_v     the call's result, typed

Statements join on ``__ml_h`` alone unless they verify, so the inputs are stored only
for those: a two-column table is about three times cheaper to write. The two layouts
have different names, so a relation read again after a later batch finds its columns.

Only the inputs the persistent prediction cache lacks (all of them when it is off) go
through the model, in batches on several threads, and new results are stored in the
cache. Inputs whose keys collide are left out: statements then call the model for them.
The table is replaced by the next batch that computes the same call.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from sqlml.optimizer.model_functions import ModelFunction, ModelVersion, return_type
from sqlml.sqlutil import quote_ident

KEY = "__ml_h"
VALUE = "__ml_v"


@dataclass
class SharedCall:
    """One model call as several statements write it, and where its results go."""

    function: ModelFunction
    model: str  # the model's name (counters, invalidation)
    reference: str  # how the first statement named it ('delay' or 'delay@2'): what the batch path gets
    version: ModelVersion
    signature: str  # the call with its model and row inputs as ?
    width: int  # row inputs
    call_sql: str  # SQL over k0 .. kN: the model call (when there is no batch path)
    named: dict[str, Any] | None  # constant arguments for the batch path; None: SQL only
    keys_sql: list[str] = field(default_factory=list)  # each statement's distinct-inputs query
    with_inputs: bool = False  # the table stores k0 .. kN (a statement verifies them)
    table: str = ""
    report: dict[str, Any] = field(default_factory=dict)

    def name(self, round_: int) -> str:
        digest = hashlib.sha1(f"{self.function.name}|{self.signature}|{self.version.token}".encode()).hexdigest()
        return f"__sqlml_shared_{digest[:16]}_{round_}{'_k' if self.with_inputs else ''}"


def key_names(width: int) -> list[str]:
    return [f"k{j}" for j in range(width)]


def build(connection, call: SharedCall, table: str, store: str | None) -> dict[str, Any]:
    """Create ``table`` for ``call``: distinct inputs, keys, results; returns counts."""
    from sqlml.optimizer.runtime import cache_store

    duck = connection.duckdb
    keys = key_names(call.width)
    columns = ", ".join(keys)
    hash_sql = f"hash(?, ?, {columns})"
    union = " UNION ".join(f"SELECT * FROM ({sql}) AS __ml_s({columns})" for sql in call.keys_sql)
    rows = duck.sql(
        f"SELECT {columns}, {hash_sql} AS {KEY} FROM ({union})", params=[call.signature, call.version.token]
    ).to_arrow_table()
    rows = drop_colliding_keys(rows)
    with cache_store._fill_lock(connection):
        if store is not None:
            cache_store._invalidate_old_versions(duck, _as_fill(call, store))
            duck.register("__sqlml_shared_keys", rows)
            try:
                rows = duck.sql(
                    f"SELECT k.*, s.cache_key IS NOT NULL AS __ml_hit, s.value AS __ml_cached "
                    f"FROM __sqlml_shared_keys AS k LEFT JOIN {store} AS s ON s.cache_key = k.{KEY}"
                ).to_arrow_table()
            finally:
                duck.unregister("__sqlml_shared_keys")
        report = _fill(connection, call, table, rows, store)
    call.table = table
    call.report = report
    return report


def drop_colliding_keys(rows):
    """``rows`` without the inputs whose keys collide (their statements call the model)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    keys = rows.column(KEY)
    ordered = np.sort(keys.to_numpy())  # a sort finds repeats about 3x faster than a hash count
    same = ordered[1:] == ordered[:-1]
    if not same.any():
        return rows
    repeated = pa.array(np.unique(ordered[1:][same]), keys.type)
    return rows.filter(pc.invert(pc.is_in(keys, value_set=repeated)))


def _fill(connection, call: SharedCall, table: str, rows, store: str | None) -> dict[str, Any]:
    """Score the rows the store lacks, store them, and write the table's final contents."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from sqlml.optimizer.runtime import cache_store

    duck = connection.duckdb
    keys = key_names(call.width)
    if store is not None:
        hit = rows.column("__ml_hit")
        misses = rows.filter(pc.invert(hit)).select([*keys, KEY])
        hits = rows.filter(hit)
    else:
        misses, hits = rows, None
    scored = _score(connection, call, misses) if misses.num_rows else None
    value_type = return_type(call.function)
    stored = [*keys, KEY] if call.with_inputs else [KEY]
    columns = ", ".join(stored)
    parts = []
    if hits is not None and hits.num_rows:
        duck.register("__sqlml_shared_hits", hits)
        parts.append(f"SELECT {columns}, CAST(__ml_cached AS {value_type}) FROM __sqlml_shared_hits")
    if scored is not None:
        duck.register("__sqlml_shared_scored", scored)
        parts.append(f"SELECT {columns}, CAST({VALUE} AS {value_type}) FROM __sqlml_shared_scored")
    try:
        if parts:
            body = " UNION ALL ".join(parts)
            duck.execute(f"CREATE OR REPLACE TEMP TABLE {quote_ident(table)} AS SELECT * FROM ({body}) AS __ml_t({columns}, {VALUE})")
        else:  # no inputs at all
            duck.register("__sqlml_shared_hits", rows.select(stored))
            duck.execute(
                f"CREATE OR REPLACE TEMP TABLE {quote_ident(table)} AS "
                f"SELECT *, CAST(NULL AS {value_type}) AS {VALUE} FROM __sqlml_shared_hits"
            )
        if store is not None and scored is not None:
            cache_store._insert(duck, _as_fill(call, store), pa.table({"cache_key": scored.column(KEY), "value": scored.column(VALUE)}))
    finally:
        for name in ("__sqlml_shared_hits", "__sqlml_shared_scored"):
            try:
                duck.unregister(name)
            except Exception:  # noqa: BLE001 - not registered
                pass
    lookups = rows.num_rows
    report = {"lookups": lookups, "hits": lookups - misses.num_rows, "misses": misses.num_rows}
    if store == cache_store.PERSISTENT_STORE:
        cache_store._count(duck, _as_fill(call, store), report)
    return report


def _score(connection, call: SharedCall, misses):
    """(k0 .. kN, __ml_h, __ml_v) for ``misses``: the batch path on several threads, else SQL."""
    import pyarrow as pa

    from sqlml.optimizer.runtime.bulk_stream import batch_rows, model_workers, ordered_map
    from sqlml.optimizer.runtime.cache_store import _split_nulls

    keys = key_names(call.width)
    duck = connection.duckdb
    if call.named is None or call.function.batch is None:
        duck.register("__sqlml_shared_misses", misses)
        try:
            return duck.sql(
                f"SELECT {', '.join(keys)}, {KEY}, {call.call_sql} AS {VALUE} FROM __sqlml_shared_misses"
            ).to_arrow_table()
        finally:
            duck.unregister("__sqlml_shared_misses")

    workers = model_workers(duck)
    size = max(1024, min(batch_rows(), -(-misses.num_rows // workers)))

    def score(batch):
        if call.function.nulls_reach_model:
            valid, nulls = batch, batch.slice(0, 0)
        else:
            valid, nulls = _split_nulls(batch, keys)
        out = []
        if valid.num_rows:
            values = call.function.batch(
                connection.session, call.reference, call.version, [valid.column(k) for k in keys], call.named
            )
            out.append(valid.append_column(VALUE, pa.chunked_array([values]) if isinstance(values, pa.Array) else values))
        if nulls.num_rows:
            out.append(nulls.append_column(VALUE, pa.nulls(nulls.num_rows)))
        return out

    slices = (misses.slice(start, size) for start in range(0, misses.num_rows, size))
    tables = [t for part in ordered_map(score, slices, workers) for t in part]
    return pa.concat_tables(tables, promote_options="permissive")


def _as_fill(call: SharedCall, store: str):
    from sqlml.optimizer.runtime.cache_store import Fill

    return Fill(
        store=store,
        keys_sql="",
        key_columns=key_names(call.width),
        hash_sql="",
        call_sql=call.call_sql,
        function=call.function,
        model=call.model,
        version=call.version,
        reference=call.reference,
        signature=call.signature,
    )
