"""The feature encoding as graph pieces, so exported models carry it (``EXPORT MODEL``).

``FeatureSpec.encode`` turns Arrow columns into the matrix a network reads (numeric
features standardised and packed first, then arrays and one-hot categories in argument
order). An exported model must do the same inside its graph, so ONNX Runtime or
TorchScript users send raw values. Each feature kind has an ``Encoder`` in ``ENCODERS``:

    raw        'number' (a float tensor: [n] for one value, [n, width] for an array) or 'text' ([n] strings)
    torch(f)   an nn.Module: forward(raw) -> float [n, width]  (TorchScript-able)
    onnx(f, graph, input) -> the name of a float [n, width] value built from ONNX nodes

A new feature kind (text n-grams, say) registers its encoder here and is exported with
no change to the exporters. The standardisation of a numeric feature and the category
dictionary of a categorical one become constants of the graph.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlml.errors import ServingError

if TYPE_CHECKING:
    from torch import nn

    from sqlml.models.features import Feature


class OnnxGraph:
    """Nodes and constants being collected for an ONNX graph (names kept unique)."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"sqlml_{hint}_{self._count}"

    def constant(self, hint: str, array: Any) -> str:
        from onnx import numpy_helper

        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], hint: str, domain: str = "", **attributes: Any) -> str:
        from onnx import helper

        out = self.name(hint)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, domain=domain, **attributes))
        return out


@dataclass(frozen=True)
class Encoder:
    raw: str  # 'number' | 'text'
    torch: Callable[[Feature], nn.Module]
    onnx: Callable[[Feature, OnnxGraph, str], str]


# -- numeric: (x - mean) / std -----------------------------------------------------------


def _numeric_torch(feature: Feature) -> nn.Module:
    import torch
    from torch import nn

    class Standardise(nn.Module):
        def __init__(self, mean: float, std: float):
            super().__init__()
            # float32 constants, as FeatureSpec.encode subtracts and divides in float32
            self.mean = float(torch.tensor(mean, dtype=torch.float32))
            self.std = float(torch.tensor(std, dtype=torch.float32))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (x.to(torch.float32).reshape(-1, 1) - self.mean) / self.std

    if feature.mean is None:
        return Standardise(0.0, 1.0)
    return Standardise(float(feature.mean), float(feature.std or 1.0))


def _numeric_onnx(feature: Feature, graph: OnnxGraph, raw: str) -> str:
    import numpy as np

    column = graph.node("Reshape", [raw, graph.constant("shape", np.array([-1, 1], dtype=np.int64))], "column")
    if feature.mean is None:
        return column
    centred = graph.node("Sub", [column, graph.constant("mean", np.array([feature.mean], dtype=np.float32))], "centred")
    return graph.node("Div", [centred, graph.constant("std", np.array([feature.std or 1.0], dtype=np.float32))], "scaled")


# -- arrays: as they are, flattened row-major ----------------------------------------------


def _array_torch(feature: Feature) -> nn.Module:
    import torch
    from torch import nn

    class Flat(nn.Module):
        def __init__(self, width: int):
            super().__init__()
            self.width = width

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.to(torch.float32).reshape(-1, self.width)

    return Flat(feature.width)


def _array_onnx(feature: Feature, graph: OnnxGraph, raw: str) -> str:
    import numpy as np

    return graph.node("Reshape", [raw, graph.constant("shape", np.array([-1, feature.width], dtype=np.int64))], "flat")


# -- categorical: one-hot over the training categories plus one slot for NULL/unseen ----------


def _categorical_torch(feature: Feature) -> nn.Module:
    import torch
    from torch import nn

    class OneHot(nn.Module):
        def __init__(self, categories: list[str]):
            super().__init__()
            self.index: dict[str, int] = {c: i for i, c in enumerate(categories)}
            self.width = len(categories) + 1

        def forward(self, values: list[str]) -> torch.Tensor:
            slots = [self.index.get(v, self.width - 1) for v in values]
            out = torch.zeros(len(values), self.width)
            out[torch.arange(len(values)), torch.tensor(slots, dtype=torch.long)] = 1.0
            return out

    return OneHot(list(feature.categories or []))


def _categorical_onnx(feature: Feature, graph: OnnxGraph, raw: str) -> str:
    import numpy as np

    categories = list(feature.categories or [])
    unseen = len(categories)
    index = graph.node(
        "LabelEncoder", [raw], "slot", domain="ai.onnx.ml",
        keys_strings=categories or [""], values_int64s=list(range(len(categories))) or [unseen], default_int64=unseen,
    )
    return graph.node(
        "OneHot",
        [index, graph.constant("depth", np.array(unseen + 1, dtype=np.int64)), graph.constant("off_on", np.array([0.0, 1.0], dtype=np.float32))],
        "onehot", axis=-1,
    )


ENCODERS: dict[str, Encoder] = {
    "numeric": Encoder("number", _numeric_torch, _numeric_onnx),
    "array": Encoder("number", _array_torch, _array_onnx),
    "categorical": Encoder("text", _categorical_torch, _categorical_onnx),
}


def encoder(feature: Feature) -> Encoder:
    found = ENCODERS.get(feature.kind)
    if found is None:
        raise ServingError(
            f"feature {feature.name!r} is of kind {feature.kind!r}, which has no graph encoder yet, so the model cannot "
            f"be exported with its encoding; kinds that can: {', '.join(ENCODERS)}"
        )
    return found


def encoding_order(features: list[Feature]) -> list[int]:
    """Feature positions in the order their encodings are concatenated (numeric first, as ``FeatureSpec.offsets``)."""
    numeric = [i for i, f in enumerate(features) if f.kind == "numeric"]
    return numeric + [i for i, f in enumerate(features) if f.kind != "numeric"]
