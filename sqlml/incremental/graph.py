"""A CNN as a layer graph: which layers can be updated patch by patch, which run dense.

``compile_model(module, input_shape)`` traces the module with ``torch.fx`` and sorts
every node into one of four kinds:

- ``spatial``: Conv2d (zero padding), MaxPool2d, AvgPool2d: a change grows by the rules
  in :mod:`sqlml.incremental.patches`;
- ``pointwise``: BN in eval mode, activations (PReLU included), dropout in eval,
  identity, softmax over channels, arithmetic with a scalar: the change stays where it is;
- ``merge``: residual add / multiply of two maps and concat over channels: the changes
  of the inputs, together;
- ``dense``: everything else (flatten, global pooling, linear, unknown layers). A
  dense layer runs on the full updated tensors, and so does everything after it.

A node is *local* when its kind is not dense and all its tensor inputs are local;
the local nodes form the incremental part, their outputs are materialized. A shape
check on an example input demotes anything that does not keep its spatial layout.
Whatever cannot be traced at all runs as full inference; ``Program.reason`` says why.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from sqlml.incremental import patches

SPATIAL, POINTWISE, MERGE, DENSE, INPUT = "spatial", "pointwise", "merge", "dense", "input"


@dataclass
class Node:
    name: str
    kind: str
    inputs: list[str]  # names of the tensor-producing nodes this one reads
    call: Any  # fx node, evaluated by Program.evaluate
    label: str  # what it is, for reports: "Conv2d(3, 16, k=3)", "relu", ...
    op: patches.SpatialOp | None = None
    local: bool = False
    shape: tuple[int, ...] = ()  # output shape for the example input (local nodes: N, C, H, W)
    full_macs: int = 0  # cost of the whole layer, multiply-adds (or element ops)
    note: str = ""  # why it is dense, when it is


@dataclass
class Program:
    """A traced model with its nodes in execution order (call ``finalize`` after changing them)."""

    module: Any
    input_shape: tuple[int, ...]
    nodes: list[Node] = field(default_factory=list)
    input_name: str = ""
    output: Any = None  # the fx output node's argument structure
    reason: str | None = None  # set when the model cannot run incrementally at all
    by_name: dict[str, Node] = field(default_factory=dict)
    local: list[Node] = field(default_factory=list)  # local nodes after the input, in order
    dense: list[Node] = field(default_factory=list)
    #: local nodes whose full tensor is kept: something reads it beyond its own cells
    #: (a window, a merge, a dense layer, the output); a conv followed by ReLU keeps only the ReLU
    materialized: frozenset[str] = frozenset()
    #: pointwise nodes allowed to run in place, as the model wrote them: their input is a
    #: temporary nobody else reads (a conv before its ReLU), never a materialized tensor
    in_place: frozenset[str] = frozenset()
    #: per node: the values no later node reads, dropped once it ran (a full pass keeps only the
    #: materialized ones, so its memory is reused as the module's own forward reuses it)
    release: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _modules: dict[str, Any] = field(default_factory=dict)
    _tables: Any = None  # index tables of the local nodes (sqlml.incremental.cells.tables_for)
    _layer_seconds: Any = None  # each node's measured whole-map seconds, once timed (shared by engines)

    def finalize(self) -> Program:
        import torch.fx as fx

        self.by_name = {n.name: n for n in self.nodes}
        self.local = [n for n in self.nodes if n.local and n.kind != INPUT]
        self.dense = [n for n in self.nodes if not n.local]
        readers: dict[str, list[Node]] = {}
        for node in self.nodes:
            for name in node.inputs:
                readers.setdefault(name, []).append(node)
        outputs: set[str] = set()
        fx.node.map_arg(self.output, lambda n: outputs.add(n.name))
        self.materialized = frozenset(
            n.name
            for n in self.nodes
            if n.local
            and (n.kind == INPUT or n.name in outputs or any(r.kind != POINTWISE or not r.local for r in readers.get(n.name, [])))
        )
        last: dict[str, str] = {}
        for node in self.nodes:
            for name in node.inputs:
                last[name] = node.name
        keep = set(self.materialized) | outputs
        release: dict[str, list[str]] = {}
        for name, reader in last.items():
            if name not in keep:
                release.setdefault(reader, []).append(name)
        self.release = {k: tuple(v) for k, v in release.items()}
        self.in_place = frozenset(
            n.name
            for n in self.nodes
            if n.local
            and n.kind == POINTWISE
            and len(n.inputs) == 1
            and n.inputs[0] not in self.materialized
            and len(readers.get(n.inputs[0], [])) == 1
            and n.inputs[0] not in outputs
        )
        return self

    @property
    def device(self):
        return _device(self.module)

    @property
    def supported(self) -> bool:
        return self.reason is None and bool(self.local)

    @property
    def total_macs(self) -> int:
        return sum(n.full_macs for n in self.nodes)

    @property
    def local_macs(self) -> int:
        return sum(n.full_macs for n in self.local)

    def notes(self) -> list[str]:
        """Why the dense layers are dense, for reports."""
        return [f"{n.name} ({n.label}): {n.note}" for n in self.dense if n.note]

    # -- running -------------------------------------------------------------------
    def run(self, x, keep: bool = True, timings: dict[str, float] | None = None):
        """Full inference; returns (output, the materialized local tensors when ``keep``).

        ``timings``, when given, receives each node's seconds (the cost model's calibration).
        """
        if not keep or not self.nodes:  # the traced module's own code (or the untraceable module)
            return self.module(x), {}
        env: dict[str, Any] = {}
        if timings is None:
            for node in self.nodes:
                env[node.name] = x if node.kind == INPUT else self.evaluate(node, env)
                for name in self.release.get(node.name, ()):
                    del env[name]
        else:
            import time

            import torch

            sync = torch.cuda.synchronize if x.device.type == "cuda" else (lambda: None)
            for node in self.nodes:
                started = time.perf_counter()
                env[node.name] = x if node.kind == INPUT else self.evaluate(node, env)
                sync()
                timings[node.name] = time.perf_counter() - started
                for name in self.release.get(node.name, ()):
                    del env[name]
        tensors = {name: env[name] for name in self.materialized} if keep else {}
        return self.collect(env), tensors

    def run_dense(self, tensors):
        """The dense nodes only, on full (already updated) local tensors."""
        env = dict(tensors)
        for node in self.dense:
            env[node.name] = self.evaluate(node, env)
        return self.collect(env)

    def evaluate(self, node: Node, env: dict[str, Any]):
        """Run one node with its inputs taken from ``env`` (full tensors or patches)."""
        import torch.fx as fx

        fx_node = node.call
        in_place = node.name in self.in_place
        if fx_node.op == "call_module" and len(fx_node.args) == 1 and not fx_node.kwargs:
            return self._module(fx_node.target, in_place)(env[fx_node.args[0].name])
        args = fx.node.map_arg(fx_node.args, lambda n: env[n.name])
        kwargs = fx.node.map_arg(fx_node.kwargs, lambda n: env[n.name])
        if "inplace" in kwargs and not in_place:
            kwargs = {**kwargs, "inplace": False}
        if fx_node.op == "call_module":
            return self._module(fx_node.target, in_place)(*args, **kwargs)
        if fx_node.op == "call_function":
            return fx_node.target(*args, **kwargs)
        if fx_node.op == "call_method":
            return getattr(args[0], fx_node.target)(*args[1:], **kwargs)
        if fx_node.op == "get_attr":
            return _get_attr(self.module, fx_node.target)
        raise AssertionError(fx_node.op)

    def collect(self, env):
        import torch.fx as fx

        return fx.node.map_arg(self.output, lambda n: env[n.name])

    def _module(self, target: str, in_place: bool = False):
        module = self.module.get_submodule(target)
        if in_place or not getattr(module, "inplace", False):
            return module
        safe = self._modules.get(target)
        if safe is None:  # a copy that never overwrites its input (a materialized tensor)
            safe = copy.copy(module)
            safe.inplace = False
            self._modules[target] = safe
        return safe


def compile_model(module, input_shape) -> Program:
    """Trace ``module`` (put in eval mode) for inputs of ``input_shape`` (C, H, W) or (N, C, H, W)."""
    import torch
    import torch.fx as fx

    module.eval()
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 3:
        shape = (1, *shape)
    try:
        traced = fx.symbolic_trace(module)
    except Exception as error:  # noqa: BLE001 - any tracing failure means: run it whole
        return _whole(module, shape, f"the model cannot be traced by torch.fx ({type(error).__name__}: {error})")
    placeholders = [n for n in traced.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        return _whole(module, shape, f"the model takes {len(placeholders)} inputs; incremental inference needs one image")
    program = Program(traced, shape)
    for fx_node in traced.graph.nodes:
        if fx_node.op == "output":
            program.output = fx_node.args[0]
        elif fx_node.op == "placeholder":
            program.input_name = fx_node.name
            program.nodes.append(Node(fx_node.name, INPUT, [], fx_node, "input", local=True))
        elif fx_node.op == "call_method" and fx_node.target.endswith("_") and not fx_node.target.endswith("__"):
            reason = f"in-place tensor method .{fx_node.target}() at {fx_node.name} would overwrite materialized activations"
            return _whole(module, shape, reason)
        else:
            program.nodes.append(_classify(traced, fx_node))
    _mark_local(program)
    with torch.inference_mode():
        _shape_check(program, torch.zeros(shape, device=_device(module)))
    _require_spatial(program)
    return program.finalize()


def _whole(module, shape, reason: str) -> Program:
    """A program that runs ``module`` as it is (full inference only)."""
    return Program(module, shape, reason=reason).finalize()


# -- classification -------------------------------------------------------------------

_POINTWISE_MODULES = {
    "ReLU", "ReLU6", "LeakyReLU", "PReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish",
    "Sigmoid", "Tanh", "Hardtanh", "Hardswish", "Hardsigmoid", "Softplus", "Softsign",
    "Tanhshrink", "LogSigmoid", "Identity", "Dropout", "Dropout2d", "AlphaDropout",
}  # fmt: skip
_POINTWISE_FUNCTIONS = {
    "relu", "relu6", "leaky_relu", "prelu", "elu", "selu", "celu", "gelu", "silu", "mish",
    "sigmoid", "tanh", "hardtanh", "hardswish", "hardsigmoid", "softplus", "softsign",
    "logsigmoid", "dropout", "dropout2d", "abs", "neg", "exp", "sqrt", "clamp", "clip",
}  # fmt: skip
_CHANNEL_SOFTMAX = {"softmax", "log_softmax", "Softmax", "LogSoftmax"}
_ARITHMETIC = {"add", "sub", "mul", "truediv", "div"}


def _classify(traced, fx_node) -> Node:
    import torch.fx as fx

    inputs = [n.name for n in fx_node.all_input_nodes]
    if fx_node.op == "get_attr":
        return Node(fx_node.name, DENSE, inputs, fx_node, f"constant {fx_node.target}", note="a constant")
    if fx_node.op == "call_module":
        module = traced.get_submodule(fx_node.target)
        kind, op, note = _module_kind(module)
        return Node(fx_node.name, kind, inputs, fx_node, _module_label(module), op=op, note=note)
    target = fx_node.target
    name = target if isinstance(target, str) else getattr(target, "__name__", str(target))
    label = f"{name}()"
    args = list(fx_node.args)
    tensors = [a for a in args if isinstance(a, fx.Node)]
    if name in _POINTWISE_FUNCTIONS and len(tensors) == 1 and args[:1] == tensors:
        if name.startswith("dropout") and fx_node.kwargs.get("training", False):
            return Node(fx_node.name, DENSE, inputs, fx_node, label, note="dropout in training mode")
        return Node(fx_node.name, POINTWISE, inputs, fx_node, label)
    if name in _CHANNEL_SOFTMAX:
        dim = fx_node.kwargs.get("dim", args[1] if len(args) > 1 else None)
        if dim in (1, -3) and len(tensors) == 1:
            return Node(fx_node.name, POINTWISE, inputs, fx_node, f"{name}(dim=1)")
        return Node(fx_node.name, DENSE, inputs, fx_node, label, note=f"{name} over dim {dim} mixes positions")
    if name in _ARITHMETIC and len(args) == 2 and not fx_node.kwargs:
        if len(tensors) == 2:
            return Node(fx_node.name, MERGE, inputs, fx_node, f"{name}(a, b)")
        if len(tensors) == 1 and all(isinstance(a, (int, float)) for a in args if not isinstance(a, fx.Node)):
            return Node(fx_node.name, POINTWISE, inputs, fx_node, f"{name}(x, scalar)")
    if name == "cat":
        parts = args[0] if args else fx_node.kwargs.get("tensors")
        dim = fx_node.kwargs.get("dim", args[1] if len(args) > 1 else 0)
        if dim in (1, -3) and isinstance(parts, (list, tuple)) and all(isinstance(t, fx.Node) for t in parts):
            return Node(fx_node.name, MERGE, inputs, fx_node, "cat(dim=1)")
        return Node(fx_node.name, DENSE, inputs, fx_node, label, note=f"concat over dim {dim}")
    return Node(fx_node.name, DENSE, inputs, fx_node, label, note=f"{label} is not a local layer")


def _module_kind(module):
    """(kind, spatial op or None, note) for a leaf module; exact types only (a subclass may change forward)."""
    import torch.nn as nn

    kind = type(module)
    name = kind.__name__
    if kind is nn.Conv2d:
        if module.padding_mode != "zeros":
            return DENSE, None, f"padding_mode={module.padding_mode!r} (only zero padding runs incrementally)"
        return SPATIAL, patches.conv_op(module), ""
    if kind is nn.MaxPool2d:
        if module.return_indices:
            return DENSE, None, "max pooling that returns indices"
        return SPATIAL, patches.max_pool_op(module), ""
    if kind is nn.AvgPool2d:
        return SPATIAL, patches.avg_pool_op(module), ""
    if kind is nn.BatchNorm2d:
        if module.training or not module.track_running_stats or module.running_mean is None:
            return DENSE, None, "batch norm without running statistics (batch statistics are global)"
        return POINTWISE, None, ""
    if name in _POINTWISE_MODULES and kind.__module__.startswith("torch.nn"):
        return POINTWISE, None, ""
    if name in _CHANNEL_SOFTMAX and kind.__module__.startswith("torch.nn"):
        if module.dim in (1, -3):
            return POINTWISE, None, ""
        return DENSE, None, f"{name} over dim {module.dim} mixes positions"
    return DENSE, None, f"{name} is not a local layer"


def _module_label(module) -> str:
    import torch.nn as nn

    name = type(module).__name__
    if isinstance(module, nn.Conv2d):
        return f"{name}({module.in_channels}->{module.out_channels}, k={tuple(module.kernel_size)}, s={tuple(module.stride)})"
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        return f"{name}(k={module.kernel_size}, s={module.stride})"
    return name


def _mark_local(program: Program) -> None:
    local = {program.input_name}
    for node in program.nodes:
        if node.kind == INPUT:
            continue
        node.local = node.kind != DENSE and bool(node.inputs) and all(i in local for i in node.inputs)
        if node.local:
            local.add(node.name)
        elif node.kind != DENSE and not node.note:
            node.note = "reads a dense layer's output"


def _shape_check(program: Program, x) -> None:
    """Run the example input; demote local nodes whose shapes break the patch rules."""
    env: dict[str, Any] = {}
    local = {program.input_name}
    for node in program.nodes:
        value = x if node.kind == INPUT else program.evaluate(node, env)
        env[node.name] = value
        node.shape = tuple(getattr(value, "shape", ()))
        if node.kind == INPUT:
            continue
        if node.local:
            problem = _shape_problem(node, [env[i] for i in node.inputs], value)
            if problem or not all(i in local for i in node.inputs):
                node.local = False
                node.note = problem or "reads a dense layer's output"
            else:
                local.add(node.name)
        node.full_macs = _macs(program.module, node, env)


def _shape_problem(node: Node, inputs, value) -> str:
    if getattr(value, "ndim", 0) != 4 or any(getattr(t, "ndim", 0) != 4 for t in inputs):
        return "not a 4-d feature map"
    if node.kind == POINTWISE and tuple(value.shape[-2:]) != tuple(inputs[0].shape[-2:]):
        return "changes the spatial size"
    if node.kind == MERGE:
        sizes = {tuple(t.shape[-2:]) for t in inputs} | {tuple(value.shape[-2:])}
        if len(sizes) != 1:
            return "merges maps of different spatial sizes"
        if "cat" not in node.label and any(tuple(t.shape) != tuple(value.shape) for t in inputs):
            return "broadcasts its inputs"
    if node.kind == SPATIAL:
        h, w = inputs[0].shape[-2:]
        oh, ow = value.shape[-2:]
        if node.op.rows.affected(0, h, oh) != (0, oh) or node.op.cols.affected(0, w, ow) != (0, ow):
            return "output size does not follow the window rule"
    return ""


def _macs(module, node: Node, env) -> int:
    """Multiply-adds of a layer (conv, linear), else one per output element."""
    value = env[node.name]
    if getattr(value, "ndim", 0) == 0:
        return 0
    if node.kind == SPATIAL:
        n, c, h, w = value.shape
        return int(node.op.macs_per_output(env[node.inputs[0]].shape[1], c) * h * w * n)
    if node.call.op == "call_module":
        layer = module.get_submodule(node.call.target)
        if type(layer).__name__ == "Linear":
            return int(layer.in_features * value.numel())
    return int(value.numel())


def _require_spatial(program: Program) -> None:
    """Without a local conv or pooling layer there is nothing to save: run full."""
    if not any(n.kind == SPATIAL and n.local for n in program.nodes) and program.reason is None:
        first = next((n for n in program.nodes if n.kind != INPUT and not n.local), None)
        where = f" (first dense layer: {first.name}, {first.label}: {first.note})" if first else ""
        program.reason = f"no convolution or pooling layer can run incrementally{where}"


def _device(module):
    import torch

    first = next(iter(module.parameters()), None)
    return first.device if first is not None else torch.device("cpu")


def _get_attr(module, target: str):
    value = module
    for part in target.split("."):
        value = getattr(value, part)
    return value
