"""What a model reads: the feature spec of a training query, and encoding Arrow data into tensors.

A training query's columns become features by their DuckDB type:

* numeric (integers, FLOAT, DOUBLE, DECIMAL, BOOLEAN): one input each, standardised with
  the training set's mean and standard deviation (``normalize := false`` keeps raw values);
* fixed-size arrays ``FLOAT[n]`` (or ``DOUBLE[n]``, nested ``FLOAT[3][32][32]``): ``n`` inputs
  kept as they are; their nested shape (or ``input_shape := [...]``) is the example's shape;
* ``VARCHAR`` and ``ENUM``: categorical, dictionary-encoded into a one-hot block over the
  categories seen in training plus one slot for NULL and unseen values;
* ``VARCHAR`` columns named in ``text := [...]``: text, a bag of word n-grams over a
  vocabulary learned from the training query (see ``sqlml.models.text``).

The spec (names, kinds, categories, statistics) is stored with the model, and the same
``FeatureSpec.encode`` turns training batches and prediction inputs into the matrix the
network sees, so training and serving cannot drift apart.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from sqlml.errors import DataError

if TYPE_CHECKING:
    import torch

NUMERIC_TYPES = frozenset(
    "tinyint smallint integer bigint hugeint utinyint usmallint uinteger ubigint uhugeint "
    "float double decimal boolean".split()
)
CATEGORICAL_TYPES = frozenset({"varchar", "enum"})


@dataclass
class Feature:
    name: str
    kind: str  # 'numeric' | 'array' | 'categorical' | 'text'
    sql_type: str
    width: int  # inputs this feature occupies in the encoded row
    shape: list[int] = field(default_factory=list)  # array features: element dims
    categories: list[str] | None = None
    mean: float | None = None  # numeric features: standardisation (None: raw)
    std: float | None = None
    text: dict[str, Any] | None = None  # text features: tokenizer settings, vocabulary, idf


@dataclass
class Target:
    """What a model predicts and how labels are read."""

    task: str  # 'classification' | 'regression'
    label: str | None
    classes: list[str] | None = None
    weight: str | None = None
    soft_label: str | None = None
    mean: float = 0.0  # regression: labels are standardised for training
    std: float = 1.0

    @property
    def n_outputs(self) -> int:
        if self.task == "classification":
            assert self.classes is not None  # a classification target always names its classes
            return len(self.classes)
        return 1


@dataclass
class FeatureSpec:
    features: list[Feature]
    input_shape: list[int]
    target: Target

    @property
    def width(self) -> int:
        return sum(f.width for f in self.features)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def numeric(self) -> list[int]:
        """Positions of the numeric features (argument order)."""
        return [i for i, f in enumerate(self.features) if f.kind == "numeric"]

    @property
    def offsets(self) -> list[int]:
        """Where each feature starts in an encoded row.

        Numeric features come first, as one contiguous block (the training data is staged
        with them packed in one array, so a batch needs no column shuffling), then the
        others in argument order.
        """
        out, at = [0] * len(self.features), 0
        for numeric_first in (True, False):
            for i, f in enumerate(self.features):
                if (f.kind == "numeric") == numeric_first:
                    out[i] = at
                    at += f.width
        return out

    def scaling(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(means, stds) of the numeric block, or None when features are not standardised."""
        numeric = [self.features[i] for i in self.numeric]
        if not numeric or numeric[0].mean is None:
            return None
        means = np.array([f.mean for f in numeric], dtype=np.float32)
        stds = np.array([f.std or 1.0 for f in numeric], dtype=np.float32)
        return means, stds

    def to_json(self) -> dict[str, Any]:
        features = []
        for f in self.features:  # shallow: a text feature's vocabulary is not deep-copied
            data = {field.name: getattr(f, field.name) for field in fields(f)}
            if data["text"]:  # the in-process encoder key stays out
                data["text"] = {k: v for k, v in data["text"].items() if not k.startswith("_")}
            features.append(data)
        return {"features": features, "input_shape": self.input_shape, "target": asdict(self.target)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FeatureSpec:
        return cls([Feature(**f) for f in data["features"]], list(data["input_shape"]), Target(**data["target"]))

    # -- encoding ------------------------------------------------------------------
    def encode(self, columns: Any, *, out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Arrow columns (one per feature, in spec order) -> (float32 ``[n, *input_shape]``, valid rows).

        A row is invalid when a numeric or array input is NULL or NaN (prediction returns
        NULL for it). ``out`` (float32 ``[n, width]``) receives the values; without it a
        lone float array column comes back as a zero-copy view.
        """
        if len(columns) != len(self.features):
            raise DataError(
                f"expected {len(self.features)} feature values ({', '.join(self.names)}), got {len(columns)}"
            )
        n = len(columns[0]) if columns else 0
        if len(self.features) == 1 and self.features[0].kind == "array":
            matrix, valid = float_matrix(columns[0], self.features[0], n)
            if out is not None:
                np.copyto(out, matrix)
                matrix = out
            return matrix.reshape((n, *self.input_shape)), valid
        matrix = out if out is not None else np.empty((n, self.width), dtype=np.float32)
        valid = np.ones(n, dtype=bool)
        scaling = self.scaling()
        numeric = self.numeric
        for feature, column, at in zip(self.features, columns, self.offsets, strict=True):
            block = matrix[:, at : at + feature.width]
            if feature.kind == "categorical":
                one_hot(column, feature, block)
                continue
            if feature.kind == "text":
                from sqlml.models.text import encoder

                encoder(feature.text or {}).encode(_as_array(column), out=block)
                continue
            values, ok = float_matrix(column, feature, n)
            block[:] = values
            valid &= ok
        if numeric and scaling is not None:
            head = matrix[:, : len(numeric)]
            head -= scaling[0]
            head /= scaling[1]
        return matrix.reshape((n, *self.input_shape)), valid


def float_matrix(column: Any, feature: Feature, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A numeric or (nested) array column as float32 ``[n, width]`` plus its valid-row mask."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = _as_array(column)
    if feature.kind == "numeric":
        t = column.type
        if not any(check(t) for check in (pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal, pa.types.is_boolean, pa.types.is_null)):
            raise DataError(f"feature {feature.name!r} is a number, but a {column.type} value was given", column=feature.name)
        if not pa.types.is_float32(column.type):
            column = pc.cast(column, pa.float32(), safe=False)
        values = _to_numpy(column).reshape(n, 1)
    else:
        values = _array_values(column, feature, n)
    # NULL arrives as NaN; a value beyond float32's range became infinite: neither can be scored
    valid = np.isfinite(values).all(axis=1) if values.size else np.ones(n, dtype=bool)
    return values, valid


def _array_values(column: Any, feature: Feature, n: int) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    width = feature.width
    null_rows = column.is_null().to_numpy(zero_copy_only=False) if column.null_count else None
    flat = column
    if pa.types.is_list(flat.type) or pa.types.is_large_list(flat.type):
        lengths = pc.list_value_length(flat).to_numpy(zero_copy_only=False)
        good = (lengths == width) if null_rows is None else ((lengths == width) | null_rows)
        if not np.all(good):
            bad = int(np.flatnonzero(~good)[0])
            raise DataError(
                f"feature {feature.name!r} expects arrays of {width} values, got one of {int(lengths[bad])}",
                column=feature.name,
            )
        out = np.full((n, width), np.nan, dtype=np.float32)
        rows = np.flatnonzero(lengths == width) if null_rows is not None else slice(None)
        out[rows] = _to_numpy(pc.cast(_leaf(flat.flatten()), pa.float32(), safe=False)).reshape(-1, width)
        return out
    size = 1
    while pa.types.is_fixed_size_list(flat.type):
        step = flat.type.list_size
        flat = flat.values.slice(flat.offset * step, len(flat) * step)
        size *= step
    if size != width or pa.types.is_list(flat.type):
        raise DataError(f"feature {feature.name!r} expects arrays of {width} values, got {size}", column=feature.name)
    if not pa.types.is_float32(flat.type):
        flat = pc.cast(flat, pa.float32(), safe=False)
    values = _to_numpy(flat).reshape(n, width)
    if null_rows is not None:
        values = values.copy()
        values[null_rows] = np.nan
    return values


def _leaf(array: Any) -> Any:
    import pyarrow as pa

    while pa.types.is_list(array.type) or pa.types.is_fixed_size_list(array.type):
        array = array.flatten()
    return array


def one_hot(column: Any, feature: Feature, block: np.ndarray) -> None:
    """Write the one-hot encoding of a categorical column into ``block`` ([n, categories + 1])."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = _as_array(column)
    if not pa.types.is_string(column.type):
        column = pc.cast(column, pa.string())
    index = pc.index_in(column, value_set=pa.array(feature.categories or [], pa.string()))
    unknown = len(feature.categories or [])
    slots = pc.fill_null(index, unknown).to_numpy(zero_copy_only=False)
    block[:] = 0.0
    block[np.arange(len(slots)), slots] = 1.0


def _as_array(column: Any) -> Any:
    import pyarrow as pa

    if isinstance(column, pa.ChunkedArray):
        return column.combine_chunks()
    if isinstance(column, pa.Array):
        return column
    return pa.array(np.asarray(column))


def _to_numpy(array: Any) -> np.ndarray:
    """float32 values, NULL as NaN; a zero-copy view when the buffer allows."""
    import pyarrow.compute as pc

    if array.null_count:
        array = pc.fill_null(array, float("nan"))
    return array.to_numpy(zero_copy_only=False)


def as_tensor(array: np.ndarray) -> torch.Tensor:
    """``torch.from_numpy`` that accepts read-only (memory-mapped, Arrow-owned) buffers."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # read-only buffer: we never write into it
        return torch.from_numpy(array)


# -- reading a query's columns -------------------------------------------------------------


def feature_kind(column: str, duck_type: Any) -> tuple[str, list[int]]:
    """('numeric' | 'array' | 'categorical', element dims) for a column of DuckDB type ``duck_type``."""
    type_id = duck_type.id
    if type_id in NUMERIC_TYPES:
        return "numeric", []
    if type_id in CATEGORICAL_TYPES:
        return "categorical", []
    if type_id == "array":
        dims, child = [], duck_type
        while child.id == "array":
            children = dict(child.children)
            dims.append(int(children["size"]))
            child = children["child"]
        if child.id in NUMERIC_TYPES and child.id != "boolean":
            return "array", dims
    if type_id == "list":
        raise DataError(
            f"feature column {column!r} is a variable-length list ({duck_type}); models need a fixed width. "
            f"Cast it to a fixed-size array in the training query, e.g. CAST({column} AS FLOAT[n]).",
            column=column,
        )
    raise DataError(
        f"feature column {column!r} has type {duck_type}, which is not numeric, a FLOAT[n] array or "
        f"categorical text. Convert it in the training query (e.g. epoch(ts), hour(ts), CAST(x AS VARCHAR)) "
        f"or leave it out of the SELECT list.",
        column=column,
    )


def array_type(dims: list[int]) -> str:
    """DuckDB's name for a float array of numpy shape ``dims``: [2, 3] -> FLOAT[3][2] (innermost first)."""
    return "FLOAT" + "".join(f"[{d}]" for d in reversed(dims))


def staging_expression(kind: str, dims: list[int], quoted: str) -> str:
    """The SQL that stages a feature column in the type the encoder reads fastest."""
    if kind == "numeric":
        return f"CAST({quoted} AS FLOAT)"
    if kind == "array":
        return f"CAST({quoted} AS {array_type(dims)})"
    return f"CAST({quoted} AS VARCHAR)"


def example_shape(features: list[Feature], requested: list[int] | None) -> list[int]:
    """The shape of one example: ``input_shape`` if given, a lone array's dims, else flat."""
    width = sum(f.width for f in features)
    if requested:
        if not isinstance(requested, list) or not all(isinstance(d, int) and d > 0 for d in requested):
            raise DataError(f"input_shape must be a list of positive integers, got {requested!r}")
        if math.prod(requested) != width:
            raise DataError(
                f"input_shape {requested} holds {math.prod(requested)} values, but the features give {width} "
                f"({', '.join(f'{f.name}: {f.width}' for f in features)})."
            )
        return list(requested)
    if len(features) == 1 and features[0].kind == "array" and len(features[0].shape) > 1:
        return list(features[0].shape)
    return [width]
