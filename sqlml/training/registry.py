"""The model registry: versions of models in ``sqlml.models``, and loading them for inference.

    latest_version(duck, name) -> int | None
    load_record(duck, name, version=None) -> ModelRecord
    load_model(session, name, version=None) -> LoadedModel   # cached per session and version
    save_model(duck, record, state_dict, replace=False) -> version
    drop_model(duck, name, version=None) -> versions dropped

Weights are ``torch.save(state_dict)`` bytes, loadable with ``torch.load(weights_only=True)``.
A model is referred to by name (its latest version) or ``'name@N'`` for version N.
"""

from __future__ import annotations

import io
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from sqlml import catalog
from sqlml.errors import DataError, ObjectExistsError, ServingError, UnknownObjectError
from sqlml.sqlutil import fetch_one, fetch_value
from sqlml.training.features import FeatureSpec, as_tensor

KIND = "model"
_VERSIONED = re.compile(r"^(.*)@(\d+)$", re.S)

#: bumped whenever any model is saved or dropped in this process; loaded-model caches
#: compare it to know when a name may point at a new version.
_generation = [0]
_generation_lock = threading.Lock()


def _bump() -> None:
    with _generation_lock:
        _generation[0] += 1


@dataclass
class ModelRecord:
    """One version of a model, without its weights."""

    name: str
    version: int
    architecture: str
    task: str  # 'classification' | 'regression'
    options: dict[str, Any]
    features: FeatureSpec
    label: str | None
    classes: list[str] | None
    input_shape: list[int]
    n_outputs: int
    metrics: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    query: str | None = None
    status: str = "trained"  # 'trained' | 'imported'

    @property
    def feature_names(self) -> list[str]:
        return self.features.names


_COLUMNS = "name, version, architecture, task, options, features, label, classes, input_shape, n_outputs, metrics, created_at, query, status"


def _record(row) -> ModelRecord:
    return ModelRecord(
        name=row[0],
        version=row[1],
        architecture=row[2],
        task=row[3],
        options=json.loads(row[4]) if row[4] else {},
        features=FeatureSpec.from_json(json.loads(row[5])),
        label=row[6],
        classes=list(row[7]) if row[7] is not None else None,
        input_shape=list(row[8] or []),
        n_outputs=row[9],
        metrics=json.loads(row[10]) if row[10] else {},
        created_at=row[11],
        query=row[12],
        status=row[13],
    )


def model_names(duck) -> list[str]:
    return [r[0] for r in duck.execute("SELECT DISTINCT name FROM sqlml.models ORDER BY name").fetchall()]


def latest_version(duck, name: str) -> int | None:
    """The newest version of ``name``, or None when no such model exists."""
    return fetch_value(duck, "SELECT max(version) FROM sqlml.models WHERE name = ?", [name])


def split_reference(duck, reference: str) -> tuple[str, int | None]:
    """``'name'`` -> (name, None); ``'name@3'`` -> (name, 3) unless a model is literally named so."""
    match = _VERSIONED.match(reference)
    if match and latest_version(duck, reference) is None:
        return match.group(1), int(match.group(2))
    return reference, None


def load_record(duck, name: str, version: int | None = None) -> ModelRecord:
    """The registry row of ``name`` (latest version unless given); ``UnknownObjectError`` with near names."""
    if version is None:
        name, version = split_reference(duck, name)
    if version is None:
        row = fetch_one(duck, f"SELECT {_COLUMNS} FROM sqlml.models WHERE name = ? ORDER BY version DESC LIMIT 1", [name])
    else:
        row = fetch_one(duck, f"SELECT {_COLUMNS} FROM sqlml.models WHERE name = ? AND version = ?", [name, version])
    if row is None:
        if version is not None and latest_version(duck, name) is not None:
            versions = [r[0] for r in duck.execute("SELECT version FROM sqlml.models WHERE name = ? ORDER BY 1", [name]).fetchall()]
            raise UnknownObjectError("model version", f"{name}@{version}", [], f"Model {name!r} has versions {versions}.")
        raise UnknownObjectError(KIND, name, model_names(duck), "See SELECT * FROM ml_models().")
    return _record(row)


def load_weights(duck, name: str, version: int) -> dict:
    """The state dict of one version (``torch.load(weights_only=True)``)."""
    import torch

    blob = fetch_value(duck, "SELECT weights FROM sqlml.models WHERE name = ? AND version = ?", [name, version])
    if blob is None:
        raise UnknownObjectError("model version", f"{name}@{version}", [])
    return torch.load(io.BytesIO(blob), weights_only=True, map_location="cpu")


def next_version(duck, name: str) -> int:
    used = fetch_value(
        duck,
        "SELECT greatest((SELECT max(last_version) FROM sqlml.model_versions WHERE name = ?), "
        "(SELECT max(version) FROM sqlml.models WHERE name = ?))",
        [name, name],
    )
    return int(used or 0) + 1


def save_model(duck, record: ModelRecord, state_dict: dict, *, replace: bool = False) -> int:
    """Store a new version of ``record.name`` with ``state_dict``; returns the version given.

    Without ``replace`` an existing model of that name is an ``ObjectExistsError``; with it
    the new version becomes the latest and older versions stay (``name@N``).
    """
    import torch

    from sqlml.training.finite import require_finite_weights

    if latest_version(duck, record.name) is not None and not replace:
        raise ObjectExistsError(KIND, record.name)
    require_finite_weights(record.name, state_dict, imported=record.status == "imported")
    version = next_version(duck, record.name)
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu().contiguous() for k, v in state_dict.items()}, buffer)
    duck.execute(
        "INSERT INTO sqlml.models (name, version, architecture, task, options, query, features, label, classes, "
        "input_shape, n_outputs, metrics, status, weights) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            record.name,
            version,
            record.architecture,
            record.task,
            json.dumps(record.options, default=str),
            record.query,
            json.dumps(record.features.to_json()),
            record.label,
            record.classes,
            record.input_shape,
            record.n_outputs,
            json.dumps(record.metrics, default=_json_number),
            record.status,
            buffer.getvalue(),
        ],
    )
    duck.execute("DELETE FROM sqlml.model_versions WHERE name = ?", [record.name])
    duck.execute("INSERT INTO sqlml.model_versions VALUES (?, ?)", [record.name, version])
    catalog.put_object(
        duck,
        KIND,
        record.name,
        {"latest_version": version, "architecture": record.architecture, "task": record.task, "status": record.status},
        replace=True,
    )
    record.version = version
    _bump()
    return version


def drop_model(duck, name: str, version: int | None = None, *, missing_ok: bool = False) -> int:
    """Delete every version of ``name`` (or one); returns how many were dropped."""
    if latest_version(duck, name) is None:
        if missing_ok:
            return 0
        raise UnknownObjectError(KIND, name, model_names(duck))
    if version is None:
        count = fetch_value(duck, "SELECT count(*) FROM sqlml.models WHERE name = ?", [name])
        duck.execute("DELETE FROM sqlml.models WHERE name = ?", [name])
    else:
        count = fetch_value(duck, "SELECT count(*) FROM sqlml.models WHERE name = ? AND version = ?", [name, version])
        if not count:
            load_record(duck, name, version)  # raises with the versions that exist
        duck.execute("DELETE FROM sqlml.models WHERE name = ? AND version = ?", [name, version])
    if version is None:
        duck.execute("DELETE FROM sqlml.checkpoints WHERE model = ?", [name])
    latest = latest_version(duck, name)
    if latest is None:
        catalog.delete_object(duck, KIND, name, missing_ok=True)
    else:
        props = catalog.get_object(duck, KIND, name)["properties"]
        catalog.put_object(duck, KIND, name, {**props, "latest_version": latest}, replace=True)
    _bump()
    return int(count)


def _json_number(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return str(value)


# -- loading for inference -----------------------------------------------------------------


class LoadedModel:
    """A model ready for inference: ``record``, ``module`` (eval mode), ``device``.

    ``encode(data)`` turns Arrow data (a Table / RecordBatch, read by feature name, or a
    list of columns in feature order) into the input tensor; ``predict_proba``,
    ``predict`` and ``predict_value`` take that tensor (or Arrow data, encoded first).
    """

    def __init__(self, record: ModelRecord, module, device, nulls=None):
        self.record = record
        self.module = module
        self.device = device
        self.nulls = nulls  # sqlml.serving.nulls.NullCounts, or None (not counted)

    @property
    def spec(self) -> FeatureSpec:
        return self.record.features

    def __repr__(self) -> str:
        return f"<LoadedModel {self.record.name}@{self.record.version} {self.record.architecture} on {self.device}>"

    def encode(self, data):
        return self.encode_valid(data)[0]

    def encode_valid(self, data):
        """(input tensor, boolean mask of rows whose features are all present and finite)."""
        columns = self._columns(data)
        matrix, valid = self.spec.encode(columns)
        return as_tensor(matrix), valid

    def _columns(self, data) -> list:
        names = getattr(data, "column_names", None) or (data.schema.names if hasattr(data, "schema") else None)
        if names is not None:
            missing = [n for n in self.spec.names if n not in names]
            if missing:
                raise DataError(
                    f"model {self.record.name!r} needs column(s) {', '.join(map(repr, missing))} "
                    f"(its features: {', '.join(self.spec.names)})"
                )
            return [data.column(n) for n in self.spec.names]
        return list(data)

    def forward(self, x, batch_rows: int = 65_536):
        """Raw outputs ``[n, n_outputs]`` on CPU, computed in chunks without gradients."""
        import torch

        if not isinstance(x, torch.Tensor):
            x = self.encode(x)
        outputs = []
        with torch.inference_mode():
            for start in range(0, max(len(x), 1), batch_rows):
                chunk = x[start : start + batch_rows].to(self.device)
                outputs.append(self.module(chunk).float().cpu())
        return torch.cat(outputs) if outputs else torch.empty((0, self.record.n_outputs))

    def predictions(self, x, valid: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """(values, valid rows) for ``kind`` 'proba', 'index' or 'value'; never NaN where valid.

        A row is invalid (its prediction NULL) when its inputs were (``valid`` False) or
        when the network's output for it is not finite; both are counted by reason.
        """
        import torch

        from sqlml.serving.nulls import INVALID_INPUT, NON_FINITE_OUTPUT

        self._require("regression" if kind == "value" else "classification", f"predictions of kind {kind!r}")
        out = self.forward(x)
        if kind == "proba":
            values = torch.softmax(out, dim=1).numpy()
        elif kind == "index":
            values = out.argmax(dim=1).numpy()
        else:
            target = self.spec.target
            values = out[:, 0].double().numpy() * target.std + target.mean
        finite = np.isfinite(values if kind != "index" else out.numpy())
        finite = finite.all(axis=1) if finite.ndim > 1 else finite
        if self.nulls is not None:
            name, version = self.record.name, self.record.version
            self.nulls.add(name, version, INVALID_INPUT, int((~valid).sum()))
            self.nulls.add(name, version, NON_FINITE_OUTPUT, int((valid & ~finite).sum()))
        return values, valid & finite

    def predict_proba(self, x) -> np.ndarray:
        """Class probabilities ``[n, k]`` (classification models)."""
        import torch

        self._require("classification", "ml_predict_proba")
        return torch.softmax(self.forward(x), dim=1).numpy()

    def predict_index(self, x) -> np.ndarray:
        self._require("classification", "predict_index")
        return self.forward(x).argmax(dim=1).numpy()

    def predict_value(self, x) -> np.ndarray:
        """Regression predictions in the label's units (float64)."""
        self._require("regression", "ml_predict_value")
        target = self.spec.target
        return self.forward(x)[:, 0].double().numpy() * target.std + target.mean

    def predict(self, x) -> np.ndarray:
        """Class names (classification) or values (regression), one per row."""
        if self.record.task == "classification":
            return np.asarray(self.record.classes, dtype=object)[self.predict_index(x)]
        return self.predict_value(x)

    def _require(self, task: str, what: str) -> None:
        if self.record.task != task:
            other = "ml_predict_value" if task == "classification" else "ml_predict or ml_predict_proba"
            raise ServingError(
                f"{what} needs a {task} model; {self.record.name!r} is a {self.record.task} model (use {other})"
            )


def build_module(record: ModelRecord, state_dict: dict, device=None, *, strict: bool = True):
    """The record's architecture, built and loaded with ``state_dict``, in eval mode."""
    import torch

    from sqlml.training.architectures import ARCHITECTURES, build

    if record.architecture not in ARCHITECTURES:
        raise UnknownObjectError(
            "architecture",
            record.architecture,
            ARCHITECTURES,
            f"Model {record.name!r} uses it; register it in this process with "
            f"sqlml.register_architecture({record.architecture!r}, factory) before loading the model.",
        )
    module = build(record.architecture, tuple(record.input_shape), record.n_outputs, record.options)
    try:
        module.load_state_dict(state_dict, strict=strict)
    except RuntimeError as error:
        raise ServingError(
            f"the weights of model {record.name!r} do not fit architecture {record.architecture!r}: {error}"
        ) from None
    module.eval()
    return module.to(device or torch.device("cpu"))


def resolve_device(setting: str = "auto"):
    """'auto' -> CUDA when present, else CPU; an unavailable device is refused clearly."""
    import torch

    from sqlml.errors import InvalidOptionError

    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(setting)
    except RuntimeError:
        raise InvalidOptionError("device", "device", f"{setting!r} is not a torch device") from None
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise InvalidOptionError("device", "device", f"{setting!r} requested, but this machine has no such CUDA device; use 'auto' or 'cpu'")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise InvalidOptionError("device", "device", "'mps' requested, but it is not available here; use 'auto' or 'cpu'")
    return device


def load_model(session, name: str, version: int | None = None, *, device: str = "auto") -> LoadedModel:
    """The model, loaded once per session and version (``session.cache('models')``)."""
    cache = session.cache("models")
    with session.lock:
        if cache.get("__generation__") != _generation[0]:
            cache.clear()
            cache["__generation__"] = _generation[0]
        if version is None:
            latest = cache.get(("latest", name))
            if latest is None:
                with session.cursor() as cur:
                    plain, pinned = split_reference(cur, name)
                    latest = (plain, pinned if pinned is not None else latest_version(cur, plain))
                if latest[1] is None:
                    with session.cursor() as cur:
                        load_record(cur, latest[0])  # raises UnknownObjectError with near names
                cache[("latest", name)] = latest
            name, version = latest
        key = (name, version)
        loaded = cache.get(key)
        if loaded is None:
            with session.cursor() as cur:
                record = load_record(cur, name, version)
                weights = load_weights(cur, name, version)
            from sqlml.serving.nulls import counts_of

            target = resolve_device(device)
            loaded = LoadedModel(record, build_module(record, weights, target), target, nulls=counts_of(session))
            cache[key] = loaded
        return loaded
