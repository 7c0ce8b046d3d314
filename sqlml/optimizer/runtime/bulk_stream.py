"""Bulk batch inference: a statement's rows stream through the model in large batches.

``CREATE TABLE ... AS SELECT ..., ml_predict(...) FROM big`` (or ``INSERT INTO ... SELECT``)
runs as: an *input query* (the SELECT with each model call replaced by its arguments)
is read on a cursor as Arrow batches (65,536 rows on a GPU, 8,192 on CPU); batches go
through the model function's batch path on as many threads as DuckDB uses (one encode
and one forward pass per batch, on the GPU when there is one); the results stream back as an Arrow reader that the rewritten statement
reads from, so DuckDB itself creates or fills the table, in its own transaction.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

#: Rows per model batch on a GPU; DuckDB's UDF chunks are 2048 rows.
BATCH_ROWS = 65_536
#: On CPU, batches past a few thousand rows stop paying: an MLP's activations leave the
#: caches (measured: 8,192 rows 34 us/row, 32,768 rows 50 us/row for a 512-wide MLP).
CPU_BATCH_ROWS = 8_192


def batch_rows() -> int:
    """Rows per model batch here: large on a GPU, cache-sized on CPU."""
    import torch

    return BATCH_ROWS if torch.cuda.is_available() else CPU_BATCH_ROWS
#: Progress bar (on a terminal) for jobs of at least this many rows.
PROGRESS_MIN_ROWS = 500_000


@dataclass
class BulkCall:
    function: Any  # ModelFunction
    model: str
    version: Any  # ModelVersion
    arg_columns: list[str]  # input-query columns holding the call's row arguments
    named: dict[str, Any]
    value_column: str


@dataclass
class BulkPlan:
    input_sql: str
    view: str  # name the stream is registered under
    slot_count: int  # leading input-query columns that pass through (the SELECT list)
    calls: list[BulkCall] = field(default_factory=list)

    def register(self, connection) -> dict[str, Any]:
        """Register the stream (reading starts when the statement reads it)."""
        stream = open_stream(connection, self)
        previous = connection.session.cache("serving").get("bulk_views", [])
        for name in previous:
            try:
                connection.duckdb.unregister(name)
            except Exception:  # noqa: BLE001 - already gone
                pass
        connection.duckdb.register(self.view, stream)
        connection.session.cache("serving")["bulk_views"] = [self.view]
        return {"bulk_view": self.view}


def model_workers(duck) -> int:
    """Batches scored at once: DuckDB's thread count (what the UDF path would use), at most 4.

    Models release the GIL while they compute, so batches in threads run in parallel.
    """
    from sqlml.sqlutil import fetch_value

    try:
        threads = int(fetch_value(duck, "SELECT current_setting('threads')"))
    except Exception:  # noqa: BLE001 - a setting DuckDB always has; be safe anyway
        threads = os.cpu_count() or 1
    return max(1, min(threads, 4))


def ordered_map(fn: Callable, items: Iterable, workers: int) -> Iterator:
    """``map(fn, items)`` on ``workers`` threads, results in order, a bounded number in flight."""
    if workers <= 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sqlml-batch") as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def new_view_name(session) -> str:
    """A stream name unique in this session (``__sqlml_bulk_1``, ``_2``, ...)."""
    state = session.cache("serving")
    state["bulk_counter"] = state.get("bulk_counter", 0) + 1
    return f"__sqlml_bulk_{state['bulk_counter']}"


def open_stream(connection, plan: BulkPlan):
    """A pyarrow RecordBatchReader of ``__c0..`` pass-through columns and call results."""
    import pyarrow as pa

    schema = stream_schema(connection, plan)
    workers = model_workers(connection.duckdb)
    cursor = connection.duckdb.cursor()
    reader = cursor.sql(plan.input_sql).to_arrow_reader(batch_rows())
    session = connection.session

    def batches():
        progress = _progress(connection, plan)
        try:
            for scored in ordered_map(lambda batch: _score(session, plan, batch, schema), reader, workers):
                yield scored
                if progress is not None:
                    progress.update(scored.num_rows)
        except Exception as error:  # noqa: BLE001 - DuckDB flattens it; the token brings it back
            from sqlml.errors import SqlmlError, UdfError

            if not isinstance(error, SqlmlError):
                error = UdfError("bulk inference", error)
            raise RuntimeError(f"{error} {session.errors.stash(error)}") from None
        finally:
            if progress is not None:
                progress.close()
            cursor.close()

    return pa.RecordBatchReader.from_batches(schema, batches())


def stream_schema(connection, plan: BulkPlan):
    """The stream's Arrow schema, without reading any row."""
    import pyarrow as pa

    with connection.session.cursor() as cur:
        source = cur.sql(plan.input_sql).limit(0).to_arrow_table().schema
    fields = [pa.field(f"__c{i}", source.field(i).type) for i in range(plan.slot_count)]
    for call in plan.calls:
        fields.append(pa.field(call.value_column, _arrow_type(connection, call.function)))
    return pa.schema(fields)


def _arrow_type(connection, function):
    """The Arrow type of a model function's SQL result type (DuckDB converts it)."""
    from sqlml.optimizer.model_functions import return_type

    with connection.session.cursor() as cur:
        return cur.sql(f"SELECT CAST(NULL AS {return_type(function)}) AS v").to_arrow_table().schema.field(0).type


def _score(session, plan: BulkPlan, batch, schema):
    import pyarrow as pa

    columns = [batch.column(i) for i in range(plan.slot_count)]
    if batch.num_rows == 0:
        columns += [pa.nulls(0, schema.field(c.value_column).type) for c in plan.calls]
        return pa.RecordBatch.from_arrays(columns, schema=schema)
    for call in plan.calls:
        arrays = [batch.column(batch.schema.get_field_index(c)) for c in call.arg_columns]
        columns.append(_call(session, call, arrays).cast(schema.field(call.value_column).type))
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _call(session, call: BulkCall, arrays):
    """The call's results for one batch; rows with a NULL argument give NULL without a
    model call unless the function wants to see them (as DuckDB does for UDFs)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def run(inputs):
        return _as_array(call.function.batch(session, call.model, call.version, inputs, call.named))

    if call.function.nulls_reach_model:
        return run(arrays)
    keep = pc.is_valid(arrays[0])
    for array in arrays[1:]:
        keep = pc.and_(keep, pc.is_valid(array))
    if pc.all(keep).as_py() is not False:
        return run(arrays)
    values = run([pc.filter(a, keep) for a in arrays])
    positions = pc.subtract(pc.cumulative_sum(pc.cast(keep, pa.int64())), 1)
    return pc.take(values, pc.if_else(keep, positions, pa.scalar(None, pa.int64())))


def _as_array(values):
    import pyarrow as pa

    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    return values if isinstance(values, pa.Array) else pa.array(values)


def _progress(connection, plan: BulkPlan):
    from sqlml import progress
    from sqlml.sqlutil import fetch_value

    if progress.settings()["enabled"] is False:
        return None
    with connection.session.cursor() as cur:
        total = fetch_value(cur, f"SELECT count(*) FROM ({plan.input_sql})")
    if not total or total < PROGRESS_MIN_ROWS:
        return None
    label = ", ".join(f"{c.function.name}('{c.model}')" for c in plan.calls)
    return progress.start(total, f"bulk inference {label}", unit="rows")


def in_transaction(duck) -> bool:
    """Whether ``duck`` has an explicit transaction open (a cursor would not see its writes)."""
    import duckdb

    try:
        duck.begin()
    except duckdb.TransactionException:
        return True
    duck.rollback()
    return False
