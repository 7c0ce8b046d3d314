"""What the endpoint serves: a predictor with typed input fields, and request validation.

``Predictor`` is the pluggable part: ``fields`` (what each input must hold) and
``predict(rows) -> predictions`` over a batch of validated rows (dicts). A trained model
becomes one with ``ModelPredictor``; tests plug in their own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class InputField:
    name: str
    kind: str  # 'number' | 'boolean' | 'string' | 'array'
    width: int = 1  # array fields: number of elements


class Predictor(Protocol):
    model: str
    version: int
    cache_token: str  # changes whenever the model's weights do
    fields: list[InputField]

    def predict(self, rows: list[dict[str, Any]]) -> list[Any]: ...


class RequestError(Exception):
    """A request the endpoint refuses: HTTP status, and the field at fault."""

    def __init__(self, status: int, kind: str, message: str, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.field = field

    def payload(self) -> dict[str, Any]:
        return {"error": {"type": self.kind, "message": str(self), "field": self.field}}


def parse_inputs(body: Any, fields: list[InputField], max_rows: int) -> list[dict[str, Any]]:
    """The rows of a request body ``{"inputs": [{feature: value, ...}, ...]}``, checked."""
    if not isinstance(body, dict):
        raise RequestError(422, "invalid_body", 'the body must be a JSON object like {"inputs": [...]}', None)
    unknown = [k for k in body if k != "inputs"]
    if unknown:
        raise RequestError(422, "unknown_field", f"unknown field {unknown[0]!r}; the body holds only 'inputs'", unknown[0])
    if "inputs" not in body:
        raise RequestError(422, "missing_field", "'inputs' is missing: a list of objects, one per prediction", "inputs")
    rows = body["inputs"]
    if not isinstance(rows, list) or not rows:
        raise RequestError(422, "invalid_value", "'inputs' must be a non-empty list of objects", "inputs")
    if len(rows) > max_rows:
        raise RequestError(413, "too_many_inputs", f"{len(rows)} inputs in one request; the limit is {max_rows}", "inputs")
    by_name = {f.name: f for f in fields}
    checked = []
    for i, row in enumerate(rows):
        where = f"inputs[{i}]"
        if not isinstance(row, dict):
            raise RequestError(422, "invalid_value", f"{where} must be an object of feature values", where)
        for key in row:
            if key not in by_name:
                raise RequestError(
                    422, "unknown_field", f"{where}: unknown feature {key!r}; expected {', '.join(by_name)}", f"{where}.{key}"
                )
        for field in fields:
            if field.name not in row:
                raise RequestError(422, "missing_field", f"{where}: feature {field.name!r} is missing", f"{where}.{field.name}")
            _check_value(row[field.name], field, f"{where}.{field.name}")
        checked.append(row)
    return checked


#: a number must fit the model's float32 inputs (1e308 would become inf)
FLOAT32_MAX = 3.4028234663852886e38


def _check_value(value: Any, field: InputField, where: str) -> None:
    if value is None:
        return  # a missing value: the model predicts NULL for the row
    if field.kind == "number":
        if not _finite_number(value):
            raise RequestError(422, "invalid_type", f"{where} must be a finite number within float32 range (|x| < 3.4e38), got {_shown(value)}", where)
    elif field.kind == "boolean":
        if not isinstance(value, bool):
            raise RequestError(422, "invalid_type", f"{where} must be true or false, got {_shown(value)}", where)
    elif field.kind == "string":
        if not isinstance(value, str):
            raise RequestError(422, "invalid_type", f"{where} must be a string, got {_shown(value)}", where)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise RequestError(422, "invalid_value", f"{where} is not valid Unicode text (a lone surrogate escape)", where) from None
    elif field.kind == "array":
        if not isinstance(value, list) or len(value) != field.width:
            raise RequestError(422, "invalid_type", f"{where} must be a list of {field.width} numbers", where)
        for j, item in enumerate(value):
            if not _finite_number(item):
                raise RequestError(422, "invalid_type", f"{where}[{j}] must be a finite number within float32 range", f"{where}[{j}]")


def _finite_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value) and abs(value) <= FLOAT32_MAX
    except OverflowError:  # an integer too large for a float
        return False


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class ModelPredictor:
    """A trained model version as a Predictor: label and class probabilities (or a value).

    Built from a registry record and its weights (the server reads both from the serving
    folder, never from the database). A row whose output is not finite answers NULL, so
    the response is always valid JSON.
    """

    def __init__(self, record, state_dict: dict, token: str, *, device: str = "cpu"):
        from sqlml.models.loading import LoadedModel, build_module, resolve_device

        target = resolve_device(device)
        self.loaded = LoadedModel(record, build_module(record, state_dict, target), target)
        self.model = record.name
        self.version = record.version
        self.cache_token = token
        self.fields = [_field(f) for f in record.features.features]

    @classmethod
    def from_registry(cls, connection, reference: str) -> ModelPredictor:
        """A version read from a connection's database (in-process use; servers read the serving folder)."""
        from sqlml.models.registry import load_record, load_weights, version_token

        with connection.session.cursor() as cur:
            record = load_record(cur, reference)
            state = load_weights(cur, record.name, record.version)
            found = version_token(cur, f"{record.name}@{record.version}")
        return cls(record, state, found[2] if found else f"{record.name}@{record.version}")

    def warm(self, rounds: int = 3) -> None:
        """Run a few batches (one row, then a full-ish batch) so the first request pays nothing."""
        example = {f.name: _example(f) for f in self.fields}
        for size in (1, 64)[: max(1, rounds)]:
            self.predict([example] * size)

    def predict(self, rows: list[dict[str, Any]]) -> list[Any]:
        record = self.loaded.record
        columns = [_column(f, [row.get(f.name) for row in rows]) for f in self.fields]
        x, valid = self.loaded.encode_valid(columns)
        if record.task == "classification":
            probabilities, valid = self.loaded.predictions(x, valid, "proba")
            classes = record.classes
            out = []
            for ok, p in zip(valid, probabilities, strict=True):
                if not ok:
                    out.append({"label": None, "probabilities": None})
                    continue
                out.append(
                    {"label": classes[int(p.argmax())], "probabilities": {c: round(float(v), 6) for c, v in zip(classes, p, strict=True)}}
                )
            return out
        values, valid = self.loaded.predictions(x, valid, "value")
        return [{"value": float(v) if ok else None} for ok, v in zip(valid, values, strict=True)]


def _column(field: InputField, values: list[Any]):
    """One feature's values as Arrow, numbers as float64 (a JSON integer like 10**30 fits no int64)."""
    import pyarrow as pa

    if field.kind == "number":
        return pa.array([None if v is None else float(v) for v in values], pa.float64())
    if field.kind == "array":
        return pa.array([None if v is None else [float(x) for x in v] for v in values], pa.list_(pa.float64()))
    return pa.array(values)


def _example(field: InputField) -> Any:
    if field.kind == "string":
        return ""
    if field.kind == "boolean":
        return False
    if field.kind == "array":
        return [0.0] * field.width
    return 0.0


def _field(feature) -> InputField:
    if feature.kind in ("categorical", "text"):
        return InputField(feature.name, "string")
    if feature.kind == "array":
        return InputField(feature.name, "array", feature.width)
    if feature.sql_type.lower() == "boolean":
        return InputField(feature.name, "boolean")
    return InputField(feature.name, "number")
