"""Running a Python labeling function as a DuckDB Arrow UDF.

The UDF gets the LF's input columns plus the row key (for error messages), calls the
function on whole Arrow chunks, and maps its answer to SMALLINT class indexes. When the
function raises on a chunk, the chunk is re-run row by row to find the row: the error
names the LF and that row's key, or (fault-tolerant LFs) the row abstains and is counted.
"""

from __future__ import annotations

import uuid

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sqlml.errors import LabelingError, SqlmlError


class PythonLFRunner:
    def __init__(self, lf, classes: list[str], key_column: str, session):
        self.lf = lf
        self.classes = classes
        self.key_column = key_column
        self.session = session
        self.class_array = pa.array(classes, pa.string())
        self.rows = 0  # rows evaluated
        self.faults = 0
        self.udf_name = f"__sqlml_lf_{uuid.uuid4().hex[:12]}"

    # DuckDB calls this with Arrow arrays: inputs..., key
    def __call__(self, *arrays):
        try:
            return self._chunk(arrays)
        except Exception as error:  # noqa: BLE001 - every error goes back typed
            if not isinstance(error, SqlmlError):
                error = LabelingError(f"labeling function {self.lf.name!r} failed: {type(error).__name__}: {error}")
            raise RuntimeError(f"{error} {self.session.errors.stash(error)}") from None

    def _chunk(self, arrays):
        *inputs, keys = arrays
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

    def register(self, duck, input_types: list[str], key_type: str) -> None:
        duck.create_function(
            self.udf_name, _with_arity(self, len(input_types) + 1), [*input_types, key_type], "SMALLINT", type="arrow", null_handling="special",
            exception_handling="default", side_effects=True,
        )

    def unregister(self, duck) -> None:
        try:
            duck.remove_function(self.udf_name)
        except Exception:  # noqa: BLE001 - already gone
            pass


def _with_arity(fn, n: int):
    """DuckDB checks a UDF's parameter count: wrap ``fn(*arrays)`` in a function of n parameters."""
    names = ", ".join(f"a{i}" for i in range(n))
    namespace: dict = {}
    exec(f"def udf({names}):\n    return fn({names})", {"fn": fn}, namespace)  # names are generated, not user text
    return namespace["udf"]
