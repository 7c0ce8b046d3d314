"""Loading a registered model for inference: ``load_model`` gives a ``LoadedModel``.

    load_model(session, name, version=None) -> LoadedModel   # cached per session and version

A loaded model encodes Arrow data with the feature spec it was trained with and runs its
network in eval mode; the cache is dropped whenever a model is saved or dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from sqlml.errors import DataError, ServingError, UnknownObjectError
from sqlml.models import registry
from sqlml.models.features import FeatureSpec, as_tensor
from sqlml.models.nulls import INVALID_INPUT, NON_FINITE_OUTPUT, NullCounts, counts_of
from sqlml.models.registry import ModelRecord, latest_version, load_record, load_weights, split_reference

if TYPE_CHECKING:
    import torch
    from torch import nn

    from sqlml.session import Session


#: On CPU a forward pass runs in chunks of rows whose widest dense activation stays about this
#: size, so it stays in cache: a 512-wide MLP scoring 62k rows took 0.64 s in 8,192-row
#: chunks and 0.46 s in 2,048-row ones (the multi-query benchmark); a narrow one keeps large chunks.
CPU_ACTIVATION_BYTES = 4 << 20


def cpu_chunk_rows(module: nn.Module) -> int | None:
    """Rows per forward chunk on CPU for a network of dense layers; None: no bound (convolutions,
    whose activations grow with the image, and networks without ``Linear`` layers)."""
    from torch import nn

    widths = []
    for layer in module.modules():
        if isinstance(layer, nn.modules.conv._ConvNd):
            return None
        if isinstance(layer, nn.Linear):
            widths.append(max(layer.in_features, layer.out_features))
    if not widths:
        return None
    return max(256, CPU_ACTIVATION_BYTES // (4 * max(widths)))


class LoadedModel:
    """A model ready for inference: ``record``, ``module`` (eval mode), ``device``.

    ``encode(data)`` turns Arrow data (a Table / RecordBatch, read by feature name, or a
    list of columns in feature order) into the input tensor; ``predict_proba``,
    ``predict`` and ``predict_value`` take that tensor (or Arrow data, encoded first).
    """

    def __init__(self, record: ModelRecord, module: nn.Module, device: torch.device, nulls: NullCounts | None = None):
        self.record = record
        self.module = module
        self.device = device
        self.nulls = nulls  # NULL predictions counted by reason, or None (not counted)
        self.chunk_rows = cpu_chunk_rows(module) if device.type == "cpu" else None

    @property
    def spec(self) -> FeatureSpec:
        return self.record.features

    def __repr__(self) -> str:
        return f"<LoadedModel {self.record.name}@{self.record.version} {self.record.architecture} on {self.device}>"

    def encode(self, data: Any) -> torch.Tensor:
        return self.encode_valid(data)[0]

    def encode_valid(self, data: Any) -> tuple[torch.Tensor, np.ndarray]:
        """(input tensor, boolean mask of rows whose features are all present and finite)."""
        columns = self._columns(data)
        matrix, valid = self.spec.encode(columns)
        return as_tensor(matrix), valid

    def _columns(self, data: Any) -> list[Any]:
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

    def forward(self, x: Any, batch_rows: int = 65_536) -> torch.Tensor:
        """Raw outputs ``[n, n_outputs]`` on CPU, computed in chunks without gradients."""
        import torch

        if self.chunk_rows is not None:
            batch_rows = min(batch_rows, self.chunk_rows)
        if not isinstance(x, torch.Tensor):
            x = self.encode(x)
        outputs = []
        with torch.inference_mode():
            for start in range(0, max(len(x), 1), batch_rows):
                chunk = x[start : start + batch_rows].to(self.device)
                outputs.append(self.module(chunk).float().cpu())
        return torch.cat(outputs) if outputs else torch.empty((0, self.record.n_outputs))

    def predictions(self, x: Any, valid: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """(values, valid rows) for ``kind`` 'proba', 'index' or 'value'; never NaN where valid.

        A row is invalid (its prediction NULL) when its inputs were (``valid`` False) or
        when the network's output for it is not finite; both are counted by reason.
        """
        import torch

        self._require("regression" if kind == "value" else "classification", f"predictions of kind {kind!r}")
        out = self.forward(x)
        if kind == "proba":
            values = torch.softmax(out, dim=1).numpy()
        elif kind == "index":
            values = out.argmax(dim=1).numpy()
        else:
            target = self.spec.target
            assert target is not None
            values = out[:, 0].double().numpy() * target.std + target.mean
        finite = np.isfinite(values if kind != "index" else out.numpy())
        finite = finite.all(axis=1) if finite.ndim > 1 else finite
        if self.nulls is not None:
            name, version = self.record.name, self.record.version
            self.nulls.add(name, version, INVALID_INPUT, int((~valid).sum()))
            self.nulls.add(name, version, NON_FINITE_OUTPUT, int((valid & ~finite).sum()))
        return values, valid & finite

    def predict_proba(self, x: Any) -> np.ndarray:
        """Class probabilities ``[n, k]`` (classification models)."""
        import torch

        self._require("classification", "ml_predict_proba")
        return torch.softmax(self.forward(x), dim=1).numpy()

    def predict_index(self, x: Any) -> np.ndarray:
        self._require("classification", "predict_index")
        return self.forward(x).argmax(dim=1).numpy()

    def predict_value(self, x: Any) -> np.ndarray:
        """Regression predictions in the label's units (float64)."""
        self._require("regression", "ml_predict_value")
        target = self.spec.target
        return self.forward(x)[:, 0].double().numpy() * target.std + target.mean

    def predict(self, x: Any) -> np.ndarray:
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


def build_module(record: ModelRecord, state_dict: dict[str, Any], device: torch.device | None = None, *, strict: bool = True) -> nn.Module:
    """The record's architecture, built and loaded with ``state_dict``, in eval mode."""
    import torch

    from sqlml.models.architectures import ARCHITECTURES, build

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


def resolve_device(setting: str = "auto") -> torch.device:
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


def load_model(session: Session, name: str, version: int | None = None, *, device: str = "auto") -> LoadedModel:
    """The model, loaded once per session and version (``session.cache('models')``)."""
    cache = session.cache("models")
    with session.lock:
        if cache.get("__generation__") != registry.generation():
            cache.clear()
            cache["__generation__"] = registry.generation()
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
                weights = load_weights(cur, name, record.version)
            target = resolve_device(device)
            loaded = LoadedModel(record, build_module(record, weights, target), target, nulls=counts_of(session))
            cache[key] = loaded
        return loaded
