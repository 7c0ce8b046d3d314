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
_ALIASED = re.compile(r"^(.*)@([A-Za-z_][A-Za-z0-9_]*)$", re.S)

#: bumped whenever any model is saved or dropped in this process; loaded-model caches
#: (``sqlml.models.loading``) compare it to know when a name may point at a new version.
_generation = [0]
_generation_lock = threading.Lock()


def _bump() -> None:
    with _generation_lock:
        _generation[0] += 1


def changed(duck: DuckDBPyConnection, name: str) -> None:
    """A version, alias or split of ``name`` changed: caches of this process look again, and
    the serving folder beside the database (if any) is republished once the statement commits."""
    from sqlml.models import published

    _bump()
    published.schedule(duck, name)


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
    lineage: dict[str, Any] = field(default_factory=dict)  # what it was trained on (ml_lineage)

    @property
    def feature_names(self) -> list[str]:
        return self.features.names


_COLUMNS = "name, version, architecture, task, options, features, label, classes, input_shape, n_outputs, metrics, created_at, query, status"
_COLUMNS_LINEAGE = _COLUMNS + ", lineage"


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
        lineage=json.loads(row[14]) if len(row) > 14 and row[14] else {},
    )


def record_to_json(record: ModelRecord) -> dict[str, Any]:
    """The record as plain JSON (published beside the database, embedded in exported files)."""
    return {
        "name": record.name,
        "version": record.version,
        "architecture": record.architecture,
        "task": record.task,
        "options": json.loads(json.dumps(record.options, default=str)),
        "features": record.features.to_json(),
        "label": record.label,
        "classes": record.classes,
        "input_shape": record.input_shape,
        "n_outputs": record.n_outputs,
        "metrics": json.loads(json.dumps(record.metrics, default=_json_number)),
        "created_at": record.created_at.isoformat() if record.created_at else None,
        "query": record.query,
        "status": record.status,
        "lineage": json.loads(json.dumps(record.lineage, default=_json_number)),
    }


def record_from_json(data: dict[str, Any]) -> ModelRecord:
    created = data.get("created_at")
    return ModelRecord(
        name=data["name"],
        version=int(data["version"]),
        architecture=data["architecture"],
        task=data["task"],
        options=dict(data.get("options") or {}),
        features=FeatureSpec.from_json(data["features"]),
        label=data.get("label"),
        classes=list(data["classes"]) if data.get("classes") is not None else None,
        input_shape=list(data.get("input_shape") or []),
        n_outputs=int(data["n_outputs"]),
        metrics=dict(data.get("metrics") or {}),
        created_at=datetime.fromisoformat(created) if created else None,
        query=data.get("query"),
        status=data.get("status", "trained"),
        lineage=dict(data.get("lineage") or {}),
    )


def model_names(duck: DuckDBPyConnection) -> list[str]:
    return [r[0] for r in duck.execute("SELECT DISTINCT name FROM sqlml.models ORDER BY name").fetchall()]


def latest_version(duck: DuckDBPyConnection, name: str) -> int | None:
    """The newest version of ``name``, or None when no such model exists."""
    return fetch_value(duck, "SELECT max(version) FROM sqlml.models WHERE name = ?", [name])


def parse_reference(reference: str) -> tuple[str, int | None, str | None]:
    """``'m'`` -> (m, None, None); ``'m@3'`` -> (m, 3, None); ``'m@production'`` -> (m, None, 'production').

    Text only: a model literally named ``'m@3'`` is the caller's to check first."""
    match = _VERSIONED.match(reference)
    if match:
        return match.group(1), int(match.group(2)), None
    match = _ALIASED.match(reference)
    if match:
        return match.group(1), None, match.group(2)
    return reference, None, None


def split_reference(duck: DuckDBPyConnection, reference: str) -> tuple[str, int | None]:
    """``'name'`` -> (name, None); ``'name@3'`` -> (name, 3); ``'name@production'`` -> (name,
    the version alias ``production`` names); unless a model is literally named so."""
    name, pinned, alias = parse_reference(reference)
    if name == reference or latest_version(duck, reference) is not None:
        return reference, None
    if alias is not None:
        from sqlml.models.aliases import alias_version

        return name, alias_version(duck, name, alias)
    return name, pinned


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
    columns = _COLUMNS_LINEAGE if _has_lineage(duck) else _COLUMNS
    if version is None:
        row = fetch_one(duck, f"SELECT {columns} FROM sqlml.models WHERE name = ? ORDER BY version DESC LIMIT 1", [name])
    else:
        row = fetch_one(duck, f"SELECT {columns} FROM sqlml.models WHERE name = ? AND version = ?", [name, version])
    if row is None:
        if version is not None and latest_version(duck, name) is not None:
            versions = [r[0] for r in duck.execute("SELECT version FROM sqlml.models WHERE name = ? ORDER BY 1", [name]).fetchall()]
            raise UnknownObjectError("model version", f"{name}@{version}", [], f"Model {name!r} has versions {versions}.")
        raise UnknownObjectError(KIND, name, model_names(duck), "See SELECT * FROM ml_models().")
    return _record(row)


def _has_lineage(duck: DuckDBPyConnection) -> bool:
    """Whether the registry has the lineage column (catalog 11; a read-only connection may be older)."""
    found = fetch_one(
        duck,
        "SELECT 1 FROM duckdb_columns() WHERE schema_name = 'sqlml' AND table_name = 'models' AND column_name = 'lineage'",
    )
    return found is not None


def weights_blob(duck: DuckDBPyConnection, name: str, version: int) -> bytes:
    """The stored ``torch.save`` bytes of one version."""
    blob = fetch_value(duck, "SELECT weights FROM sqlml.models WHERE name = ? AND version = ?", [name, version])
    if blob is None:
        raise UnknownObjectError("model version", f"{name}@{version}", [])
    return bytes(blob)


def load_weights(duck: DuckDBPyConnection, name: str, version: int) -> dict[str, Any]:
    """The state dict of one version (``torch.load(weights_only=True)``)."""
    return weights_from_bytes(weights_blob(duck, name, version))


def weights_from_bytes(blob: bytes) -> dict[str, Any]:
    import torch

    return torch.load(io.BytesIO(blob), weights_only=True, map_location="cpu")


def weights_to_bytes(state_dict: dict[str, Any]) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu().contiguous() for k, v in state_dict.items()}, buffer)
    return buffer.getvalue()


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
    if latest_version(duck, record.name) is not None and not replace:
        raise ObjectExistsError(KIND, record.name)
    require_finite_weights(record.name, state_dict, imported=record.status == "imported")
    version = next_version(duck, record.name)
    blob = weights_to_bytes(state_dict)
    lineage = _has_lineage(duck)
    duck.execute(
        "INSERT INTO sqlml.models (name, version, architecture, task, options, query, features, label, classes, "
        "input_shape, n_outputs, metrics, status, weights" + (", lineage" if lineage else "") + ") "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?" + (", ?" if lineage else "") + ")",
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
            blob,
            *([json.dumps(record.lineage, default=_json_number)] if lineage else []),
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
    changed(duck, record.name)
    return version


def drop_model(duck: DuckDBPyConnection, name: str, version: int | None = None, *, missing_ok: bool = False) -> int:
    """Delete every version of ``name`` (or one); returns how many were dropped."""
    if latest_version(duck, name) is None:
        if missing_ok:
            return 0
        raise UnknownObjectError(KIND, name, model_names(duck))
    from sqlml.models.aliases import drop_model_rows

    drop_model_rows(duck, name, version)
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
    changed(duck, name)
    return int(count)


def _json_number(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return str(value)
