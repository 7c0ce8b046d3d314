"""Running Python labeling functions as one DuckDB Arrow UDF per scan.

All Python LFs of a scan share one UDF (``PythonLFBatch``): it gets the union of their
input columns plus the row key (for error messages) as Arrow arrays, once per chunk, and
returns a STRUCT with one SMALLINT class index per LF. Each function runs on whole
chunks; when one raises, its chunk is re-run row by row to find the row: the error names
the LF and that row's key, or (fault-tolerant LFs) the row abstains and is counted.
"""

from __future__ import annotations

import uuid

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sqlml.errors import LabelingError, SqlmlError


class PythonLFBatch:
    """One Arrow UDF evaluating several Python LFs over shared input columns."""

    def __init__(self, runners: list[PythonLFRunner], columns: list[str], session):
        self.runners = runners
        self.columns = columns  # the UDF's input columns, key last
        self.positions = [[columns.index(c) for c in runner.inputs] for runner in runners]
        self.session = session
        self.udf_name = f"__sqlml_lfs_{uuid.uuid4().hex[:12]}"
        self.fields = [(f"r{runner.lf_id}", pa.int16()) for runner in runners]

    def __call__(self, *arrays):
        keys = arrays[-1]
        try:
            codes = [
                runner.evaluate([arrays[i] for i in positions], keys)
                for runner, positions in zip(self.runners, self.positions, strict=True)
            ]
        except Exception as error:  # noqa: BLE001 - every error goes back typed
            if not isinstance(error, SqlmlError):
                error = LabelingError(f"a Python labeling function failed: {type(error).__name__}: {error}")
            raise RuntimeError(f"{error} {self.session.errors.stash(error)}") from None
        return pa.StructArray.from_arrays(codes, fields=[pa.field(n, t) for n, t in self.fields])

    @property
    def returns(self) -> str:
        return "STRUCT(" + ", ".join(f"{name} SMALLINT" for name, _ in self.fields) + ")"

    def register(self, duck, input_types: list[str]) -> None:
        duck.create_function(
            self.udf_name, _with_arity(self, len(input_types)), input_types, self.returns, type="arrow",
            null_handling="special", exception_handling="default", side_effects=True,
        )

    def unregister(self, duck) -> None:
        try:
            duck.remove_function(self.udf_name)
        except Exception:  # noqa: BLE001 - already gone
            pass


class PythonLFRunner:
    """One Python LF: calls it on a chunk and maps its answer to class indexes."""

    def __init__(self, lf, lf_id: int, classes: list[str], key_column: str):
        self.lf = lf
        self.lf_id = lf_id
        self.inputs = list(lf.inputs)
        self.classes = classes
        self.key_column = key_column
        self.class_array = pa.array(classes, pa.string())
        self.rows = 0  # rows evaluated
        self.faults = 0

    def evaluate(self, inputs, keys) -> pa.Array:
        n = len(keys)
        self.rows += n
        try:
            codes = self.to_codes(self.lf.fn(*inputs), keys)
        except LabelingError:
            raise
        except Exception:  # noqa: BLE001 - find the row, then name it
            codes = self._row_by_row(inputs, keys)
        return codes

    def _row_by_row(self, inputs, keys):
        out = []
        for i in range(len(keys)):
            try:
                out.append(self.to_codes(self.lf.fn(*(a.slice(i, 1) for a in inputs)), keys.slice(i, 1)))
            except LabelingError:
                raise
            except Exception as error:  # noqa: BLE001
                if not self.lf.fault_tolerant:
                    raise LabelingError(
                        f"labeling function {self.lf.name!r} raised {type(error).__name__}: {error} on the row "
                        f"with {self.key_column} = {keys[i].as_py()!r}. Fix it, or declare it with "
                        f"fault_tolerant=True to let such rows abstain."
                    ) from error
                self.faults += 1
                out.append(pa.nulls(1, pa.int16()))
        return pa.concat_arrays(out) if out else pa.array([], pa.int16())

    def to_codes(self, result, keys) -> pa.Array:
        n = len(keys)
        if isinstance(result, pa.ChunkedArray):
            result = result.combine_chunks()
        if not isinstance(result, pa.Array):
            result = pa.array(np.asarray(result) if isinstance(result, np.ndarray) else list(result), from_pandas=True)
        if len(result) != n:
            raise LabelingError(
                f"labeling function {self.lf.name!r} returned {len(result)} values for {n} rows; "
                f"it must return one value (or None) per input row."
            )
        kind = result.type
        if pa.types.is_null(kind):
            return pa.nulls(n, pa.int16())
        if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_dictionary(kind):
            result = result.cast(pa.string())
            codes = pc.index_in(result, value_set=self.class_array)
            bad = pc.and_(pc.is_valid(result), pc.is_null(codes))
            self._check(bad, result, keys)
            return codes.cast(pa.int16())
        if pa.types.is_integer(kind):
            low, high = pc.min_max(result).values()
            if low.as_py() is None or (low.as_py() >= 0 and high.as_py() < len(self.classes)):
                return result.cast(pa.int16())  # the common case: indexes and None only
            result = pc.if_else(pc.equal(result, -1), pa.scalar(None, kind), result)
            bad = pc.fill_null(pc.or_(pc.less(result, 0), pc.greater_equal(result, len(self.classes))), False)
            self._check(bad, result, keys)
            return result.cast(pa.int16())
        raise LabelingError(
            f"labeling function {self.lf.name!r} returned {kind} values; return class names or 0-based "
            f"class indexes, None to abstain."
        )

    def _check(self, bad, result, keys) -> None:
        if pc.any(bad).as_py():
            i = pc.index(bad, True).as_py()
            raise LabelingError(
                f"labeling function {self.lf.name!r} voted {result[i].as_py()!r}, which is not a declared class "
                f"{self.classes} (row {self.key_column} = {keys[i].as_py()!r})."
            )



def _with_arity(fn, n: int):
    """DuckDB checks a UDF's parameter count: wrap ``fn(*arrays)`` in a function of n parameters."""
    names = ", ".join(f"a{i}" for i in range(n))
    namespace: dict = {}
    exec(f"def udf({names}):\n    return fn({names})", {"fn": fn}, namespace)  # names are generated, not user text
    return namespace["udf"]
