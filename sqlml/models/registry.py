"""The model registry: versions of models in the table ``sqlml.models``, saved and dropped.

    latest_version(duck, name) -> int | None
    load_record(duck, name, version=None) -> ModelRecord
    save_model(duck, record, state_dict, replace=False) -> version
    drop_model(duck, name, version=None) -> versions dropped

Loading a model for inference is ``sqlml.models.loading.load_model``.

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
from typing import TYPE_CHECKING, Any

import numpy as np

from sqlml import catalog
from sqlml.errors import DataError, ObjectExistsError, TrainingError, UnknownObjectError
from sqlml.models.features import FeatureSpec
from sqlml.sqlutil import fetch_one, fetch_value

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection

KIND = "model"
_VERSIONED = re.compile(r"^(.*)@(\d+)$", re.S)

#: bumped whenever any model is saved or dropped in this process; loaded-model caches
#: (``sqlml.models.loading``) compare it to know when a name may point at a new version.
_generation = [0]
_generation_lock = threading.Lock()


def _bump() -> None:
    with _generation_lock:
        _generation[0] += 1


def generation() -> int:
    """How many times a model was saved or dropped in this process (loaded-model caches watch it)."""
    return _generation[0]


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


def _record(row: tuple[Any, ...]) -> ModelRecord:
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


def model_names(duck: DuckDBPyConnection) -> list[str]:
    return [r[0] for r in duck.execute("SELECT DISTINCT name FROM sqlml.models ORDER BY name").fetchall()]


def latest_version(duck: DuckDBPyConnection, name: str) -> int | None:
    """The newest version of ``name``, or None when no such model exists."""
    return fetch_value(duck, "SELECT max(version) FROM sqlml.models WHERE name = ?", [name])


def split_reference(duck: DuckDBPyConnection, reference: str) -> tuple[str, int | None]:
    """``'name'`` -> (name, None); ``'name@3'`` -> (name, 3) unless a model is literally named so."""
    match = _VERSIONED.match(reference)
    if match and latest_version(duck, reference) is None:
        return match.group(1), int(match.group(2))
    return reference, None


def version_token(duck: DuckDBPyConnection, reference: str) -> tuple[str, int, str] | None:
    """(name, version, token) of a model reference (``'name'`` or ``'name@N'``); None when
    there is no such model (or no registry table yet).

    The token, ``name@N:<created_at>``, names the exact weights: it also changes when a
    model is dropped and created again under the same number, so caches keyed by it
    never serve stale results.
    """
    exists = fetch_one(
        duck, "SELECT 1 FROM duckdb_tables() WHERE schema_name = 'sqlml' AND table_name = 'models'"
    )
    if exists is None:
        return None
    name, pinned = split_reference(duck, reference)
    row = fetch_one(  # the pinned version, else the latest: one query (this runs per statement)
        duck,
        "SELECT version, created_at FROM sqlml.models WHERE name = ? AND (? IS NULL OR version = ?) "
        "ORDER BY version DESC LIMIT 1",
        [name, pinned, pinned],
    )
    if row is None:
        return None
    version, created = int(row[0]), row[1].isoformat() if row[1] else ""
    return name, version, f"{name}@{version}:{created}"


def load_record(duck: DuckDBPyConnection, name: str, version: int | None = None) -> ModelRecord:
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


def load_weights(duck: DuckDBPyConnection, name: str, version: int) -> dict[str, Any]:
    """The state dict of one version (``torch.load(weights_only=True)``)."""
    import torch

    blob = fetch_value(duck, "SELECT weights FROM sqlml.models WHERE name = ? AND version = ?", [name, version])
    if blob is None:
        raise UnknownObjectError("model version", f"{name}@{version}", [])
    return torch.load(io.BytesIO(blob), weights_only=True, map_location="cpu")


def next_version(duck: DuckDBPyConnection, name: str) -> int:
    used = fetch_value(
        duck,
        "SELECT greatest((SELECT max(last_version) FROM sqlml.model_versions WHERE name = ?), "
        "(SELECT max(version) FROM sqlml.models WHERE name = ?))",
        [name, name],
    )
    return int(used or 0) + 1



def require_finite_weights(name: str, state_dict: dict[str, Any], *, imported: bool = False) -> None:
    """Refuse to register weights that hold NaN or infinity (``DataError`` for imported ones).

    Training stops on a loss that stops being finite (``sqlml.training.finite``); a last
    step can still blow the weights up, so they are checked once more here."""
    import torch

    for key, tensor in state_dict.items():
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            if imported:
                raise DataError(f"model {name!r}: the weights file holds NaN or infinite values (in {key!r}); not imported")
            raise TrainingError(
                f"model {name!r}: its trained weights hold NaN or infinite values (in {key!r}); no model was saved. "
                f"Lower the learning rate (lr := ...) and check the features for extreme values."
            )

def save_model(duck: DuckDBPyConnection, record: ModelRecord, state_dict: dict[str, Any], *, replace: bool = False) -> int:
    """Store a new version of ``record.name`` with ``state_dict``; returns the version given.

    Without ``replace`` an existing model of that name is an ``ObjectExistsError``; with it
    the new version becomes the latest and older versions stay (``name@N``).
    """
    import torch

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


def drop_model(duck: DuckDBPyConnection, name: str, version: int | None = None, *, missing_ok: bool = False) -> int:
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
        found = catalog.get_object(duck, KIND, name)
        assert found is not None  # the catalog row lives as long as a version does
        props = found["properties"]
        catalog.put_object(duck, KIND, name, {**props, "latest_version": latest}, replace=True)
    _bump()
    return int(count)


def _json_number(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return str(value)
