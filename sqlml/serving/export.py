"""``EXPORT MODEL`` and ``IMPORT MODEL``: models leave sqlml (and come back) as files.

    .onnx          ONNX: one input per feature (numbers float32 [n] or [n, width], categories
                   string [n]), the feature encoding inside the graph, outputs
                   ``probabilities`` [n, k] and ``label`` [n] (classification) or ``value`` [n]
    .pt            TorchScript: forward(numbers: Dict[str, Tensor], texts: Dict[str, List[str]])
                   -> probabilities [n, k] or values [n]; the encoding inside the module
    .safetensors   the network's weights, with the model's record (architecture, feature
                   spec: standardisation, categories; classes) in the file's metadata

Every format keeps the record as JSON (ONNX metadata ``sqlml``, TorchScript extra file
``sqlml.json``, safetensors metadata ``sqlml``), which is what ``IMPORT MODEL`` reads back
into a new version. The encoders come from ``sqlml.models.encoders.ENCODERS``.
"""

from __future__ import annotations

import json
import os
import warnings
from typing import Any

from sqlml.errors import DataError, InvalidOptionError, ObjectExistsError, ServingError
from sqlml.models import registry
from sqlml.models.encoders import OnnxGraph, encoder, encoding_order

FORMATS = {".onnx": "onnx", ".pt": "torchscript", ".torchscript": "torchscript", ".safetensors": "safetensors"}
OPTIONS = ("format", "opset")


def export(duck, reference: str, path: str, options: dict[str, Any]) -> dict[str, Any]:
    """Write ``reference`` (``'m'``, ``'m@3'``, ``'m@production'``) to ``path``; a summary row."""
    from sqlml.models.loading import build_module

    unknown = [k for k in options if k not in OPTIONS]
    if unknown:
        raise InvalidOptionError("EXPORT MODEL", unknown[0], allowed=OPTIONS)
    kind = _format(path, options)
    opset = options.get("opset", 17)
    if isinstance(opset, bool) or not isinstance(opset, int) or not 13 <= opset <= 21:
        raise InvalidOptionError("EXPORT MODEL", "opset", f"expected an integer from 13 to 21, got {opset!r}")
    record = registry.load_record(duck, reference)
    state = registry.load_weights(duck, record.name, record.version)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise DataError(f"cannot write {path!r}: folder {folder!r} does not exist")
    if kind == "safetensors":
        _safetensors(record, state, path)
    else:
        module = build_module(record, state)
        if kind == "onnx":
            _onnx(record, module, path, opset)
        else:
            _torchscript(record, module, path)
    return {"model": record.name, "version": record.version, "format": kind, "path": os.path.abspath(path), "bytes": os.path.getsize(path)}


def _format(path: str, options: dict[str, Any]) -> str:
    given = options.get("format")
    if given is not None:
        if given not in set(FORMATS.values()):
            raise InvalidOptionError("EXPORT MODEL", "format", f"unknown format {given!r}", allowed=sorted(set(FORMATS.values())))
        return given
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        raise InvalidOptionError(
            "EXPORT MODEL", "format", f"cannot tell the format of {path!r} from its extension; use .onnx, .pt or .safetensors, "
            "or WITH (format := 'onnx' | 'torchscript' | 'safetensors')",
        )
    return FORMATS[ext]


def _metadata(record) -> str:
    return json.dumps({"format": "sqlml-model/1", "record": registry.record_to_json(record)})


# -- the network with its head: softmax, or the label's units ------------------------------


def _head(record, module):
    import torch
    from torch import nn

    target = record.features.target

    class Head(nn.Module):
        def __init__(self, network: nn.Module, classification: bool, mean: float, std: float):
            super().__init__()
            self.network = network
            self.classification = classification
            self.mean, self.std = mean, std

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.network(x)
            if self.classification:
                return torch.softmax(out, dim=1)
            return out[:, 0] * self.std + self.mean

    return Head(module, record.task == "classification", float(target.mean), float(target.std)).eval()


def _example(record, n: int = 2):
    import torch

    return torch.zeros((n, *record.input_shape), dtype=torch.float32)


# -- ONNX --------------------------------------------------------------------------------------


def _onnx(record, module, path: str, opset: int) -> None:
    try:
        import onnx
        from onnx import TensorProto, compose, helper
    except ImportError:
        raise ServingError("EXPORT MODEL to .onnx needs the onnx package: pip install 'sqlml[export]'") from None
    import io

    import torch

    head = _head(record, module)
    buffer = io.BytesIO()
    output = "probabilities" if record.task == "classification" else "value"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        kwargs = dict(input_names=["encoded"], output_names=[output], opset_version=opset)
        try:  # the TorchScript-based exporter needs no onnxscript; the dynamo one is the fallback
            torch.onnx.export(head, (_example(record),), buffer, dynamic_axes={"encoded": {0: "n"}, output: {0: "n"}}, dynamo=False, **kwargs)
        except Exception:  # noqa: BLE001 - a torch without the legacy exporter, or a module it cannot trace
            buffer = io.BytesIO()
            batch = torch.export.Dim("n", min=1)
            torch.onnx.export(head, (_example(record),), buffer, dynamic_shapes=({0: batch},), dynamo=True, **kwargs)
    network = onnx.load_from_string(buffer.getvalue())
    graph = OnnxGraph()
    features = record.features.features
    inputs, parts = [], {}
    for i in encoding_order(features):
        feature = features[i]
        enc = encoder(feature)
        if enc.raw == "text":
            inputs.append(helper.make_tensor_value_info(feature.name, TensorProto.STRING, ["n"]))
        else:
            shape = ["n"] if feature.kind == "numeric" else ["n", *feature.shape]
            inputs.append(helper.make_tensor_value_info(feature.name, TensorProto.FLOAT, shape))
        parts[i] = enc.onnx(feature, graph, feature.name)
    import numpy as np

    joined = graph.node("Concat", [parts[i] for i in encoding_order(features)], "features", axis=1)
    shaped = graph.node("Reshape", [joined, graph.constant("shape", np.array([-1, *record.input_shape], dtype=np.int64))], "encoded")
    encoded_info = helper.make_tensor_value_info(shaped, TensorProto.FLOAT, ["n", *record.input_shape])
    opsets = {o.domain: o.version for o in network.opset_import}
    front = helper.make_model(
        helper.make_graph(graph.nodes, "sqlml_encoding", inputs, [encoded_info], graph.initializers),
        opset_imports=[helper.make_opsetid("", opsets.get("", opset)), helper.make_opsetid("ai.onnx.ml", 3)],
        ir_version=network.ir_version,
    )
    merged = compose.merge_models(front, network, io_map=[(shaped, "encoded")])
    if record.task == "classification":
        _add_label(merged, record.classes)
    merged.producer_name = "sqlml"
    helper.set_model_props(merged, {"sqlml": _metadata(record)})
    onnx.checker.check_model(merged)
    onnx.save(merged, path)


def _add_label(model, classes: list[str]) -> None:
    """An output ``label`` [n]: the class name with the highest probability."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    names = numpy_helper.from_array(np.array(classes, dtype=object), "sqlml_class_names")
    model.graph.initializer.append(names)
    model.graph.node.append(helper.make_node("ArgMax", ["probabilities"], ["sqlml_label_index"], axis=1, keepdims=0))
    model.graph.node.append(helper.make_node("Gather", ["sqlml_class_names", "sqlml_label_index"], ["label"], axis=0))
    model.graph.output.append(helper.make_tensor_value_info("label", TensorProto.STRING, ["n"]))


# -- TorchScript ------------------------------------------------------------------------------


def _torchscript(record, module, path: str) -> None:
    import torch
    from torch import nn

    features = record.features.features
    numbers = {f"f{i}": encoder(f).torch(f) for i, f in enumerate(features) if encoder(f).raw == "number"}
    texts = {f"f{i}": encoder(f).torch(f) for i, f in enumerate(features) if encoder(f).raw == "text"}

    class Exported(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.number_encoders = nn.ModuleDict(numbers)
            self.text_encoders = nn.ModuleDict(texts)
            self.feature_names: dict[str, str] = {f"f{i}": f.name for i, f in enumerate(features)}
            self.order: list[str] = [f"f{i}" for i in encoding_order(features)]
            self.input_shape: list[int] = [int(d) for d in record.input_shape]
            self.head = _head(record, module)

        def forward(self, numbers: dict[str, torch.Tensor], texts: dict[str, list[str]]) -> torch.Tensor:
            parts: dict[str, torch.Tensor] = {}
            for key, enc in self.number_encoders.items():
                parts[key] = enc(numbers[self.feature_names[key]])
            for key, enc in self.text_encoders.items():
                parts[key] = enc(texts[self.feature_names[key]])
            x = torch.cat([parts[key] for key in self.order], dim=1)
            return self.head(x.reshape([-1] + self.input_shape))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.script(Exported().eval())
        torch.jit.save(scripted, path, _extra_files={"sqlml.json": _metadata(record)})


# -- safetensors --------------------------------------------------------------------------------


def _safetensors(record, state: dict[str, Any], path: str) -> None:
    try:
        from safetensors.torch import save_file
    except ImportError:
        raise ServingError("EXPORT MODEL to .safetensors needs the safetensors package: pip install 'sqlml[export]'") from None
    save_file({k: v.contiguous() for k, v in state.items()}, path, metadata={"sqlml": _metadata(record)})


# -- IMPORT MODEL -----------------------------------------------------------------------------


def import_model(duck, name: str, path: str, options: dict[str, Any], *, replace: bool = False) -> dict[str, Any]:
    """A new version of ``name`` from a file ``EXPORT MODEL`` wrote (any of the three formats)."""
    from sqlml.models.loading import build_module

    unknown = [k for k in options if k != "format"]
    if unknown:
        raise InvalidOptionError("IMPORT MODEL", unknown[0], allowed=["format"])
    if not os.path.isfile(path):
        raise DataError(f"file {path!r} does not exist")
    kind = _format(path, options)
    reader = {"onnx": _read_onnx, "torchscript": _read_torchscript, "safetensors": _read_safetensors}[kind]
    try:
        meta, state = reader(path)
    except (ServingError, DataError):
        raise
    except Exception as error:  # noqa: BLE001 - any unreadable file
        raise DataError(f"{path!r} is not a {kind} file EXPORT MODEL wrote: {type(error).__name__}: {error}") from None
    if not meta or json.loads(meta).get("format") != "sqlml-model/1":
        raise DataError(f"{path!r} has no sqlml metadata: IMPORT MODEL reads files EXPORT MODEL wrote "
                        "(for plain weights use CREATE MODEL ... WITH (weights := 'file.pt', ...))")
    record = registry.record_from_json(json.loads(meta)["record"])
    source = f"{record.name}@{record.version}"
    record.name, record.status = name, "imported"
    record.lineage = {**record.lineage, "imported_from": os.path.abspath(path), "exported_as": source}
    build_module(record, state)  # the weights must fit the architecture
    try:
        version = registry.save_model(duck, record, state, replace=replace)
    except ObjectExistsError as error:
        if error.in_progress:
            raise
        raise ObjectExistsError("model", name, hint=f"Use IMPORT MODEL OR REPLACE {name} FROM ... to replace it, "
                                "import it under another name, or DROP it first.") from None
    return {"model": name, "version": version, "format": kind, "source": source}


def _read_safetensors(path: str):
    from safetensors import safe_open

    with safe_open(path, framework="pt") as handle:
        meta = (handle.metadata() or {}).get("sqlml")
        state = {k: handle.get_tensor(k) for k in handle.keys()}
    return meta, state


def _read_torchscript(path: str):
    import torch

    files = {"sqlml.json": ""}
    scripted = torch.jit.load(path, map_location="cpu", _extra_files=files)
    prefix = "head.network."
    state = {k[len(prefix):]: v for k, v in scripted.state_dict().items() if k.startswith(prefix)}
    return files["sqlml.json"], state


def _read_onnx(path: str):
    import onnx
    import torch
    from onnx import numpy_helper

    model = onnx.load(path)
    meta = next((p.value for p in model.metadata_props if p.key == "sqlml"), None)
    if meta is None:
        return None, {}
    record = registry.record_from_json(json.loads(meta)["record"])
    from sqlml.models.architectures import build

    expected = build(record.architecture, tuple(record.input_shape), record.n_outputs, record.options).state_dict()
    found = {}
    for init in model.graph.initializer:
        key = init.name[len("network."):] if init.name.startswith("network.") else init.name
        if key in expected:
            found[key] = torch.from_numpy(numpy_helper.to_array(init).copy())
    missing = [k for k in expected if k not in found]
    if missing:
        raise DataError(f"{path!r}: the ONNX graph does not keep weight {missing[0]!r} under its name; import the .safetensors or .pt export instead")
    return meta, found
