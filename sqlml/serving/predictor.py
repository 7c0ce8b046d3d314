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


def _check_value(value: Any, field: InputField, where: str) -> None:
    if value is None:
        return  # a missing value: the model predicts NULL for the row
    if field.kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise RequestError(422, "invalid_type", f"{where} must be a finite number, got {_shown(value)}", where)
    elif field.kind == "boolean":
        if not isinstance(value, bool):
            raise RequestError(422, "invalid_type", f"{where} must be true or false, got {_shown(value)}", where)
    elif field.kind == "string":
        if not isinstance(value, str):
            raise RequestError(422, "invalid_type", f"{where} must be a string, got {_shown(value)}", where)
    elif field.kind == "array":
        if not isinstance(value, list) or len(value) != field.width:
            raise RequestError(422, "invalid_type", f"{where} must be a list of {field.width} numbers", where)
        for j, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, (int, float)) or not math.isfinite(item):
                raise RequestError(422, "invalid_type", f"{where}[{j}] must be a finite number", f"{where}[{j}]")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class ModelPredictor:
    """A trained model from the registry as a Predictor: label and class probabilities."""

    def __init__(self, connection, reference: str):
        from sqlml.models.loading import load_model
        from sqlml.models.registry import version_token

        self.loaded = load_model(connection.session, reference)
        record = self.loaded.record
        self.model = record.name
        self.version = record.version
        found = version_token(connection.duckdb, f"{record.name}@{record.version}")
        self.cache_token = found[2] if found is not None else f"{record.name}@{record.version}"
        self.fields = [_field(f) for f in record.features.features]

    def predict(self, rows: list[dict[str, Any]]) -> list[Any]:
        import pyarrow as pa

        record = self.loaded.record
        columns = [pa.array([row.get(f.name) for row in rows]) for f in self.fields]
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


def _field(feature) -> InputField:
    if feature.kind in ("categorical", "text"):
        return InputField(feature.name, "string")
    if feature.kind == "array":
        return InputField(feature.name, "array", feature.width)
    if feature.sql_type.lower() == "boolean":
        return InputField(feature.name, "boolean")
    return InputField(feature.name, "number")
