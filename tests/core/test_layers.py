"""The import rules of ARCHITECTURE.md, checked over the source of every module in sqlml/.

Layers, lowest first: a module imports its own layer and the layers below, never one
above. Every import counts, those inside functions too, and so does a string that names
a module (a ``"module:function"`` handler, an importlib target): the core names no
feature area even in a string. In the features layer each area stands alone, but for
the pairs in ``BETWEEN_FEATURES``.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "sqlml"

#: (layer, the modules and packages in it); a package covers every module inside it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "foundation",
        (
            "sqlml.errors",
            "sqlml.resources",
            "sqlml.sqlutil",
            "sqlml.bounds",
            "sqlml.transaction",
            "sqlml.session",
            "sqlml.relation",
            "sqlml.render",
            "sqlml.catalog",
            "sqlml.macros",
            "sqlml.udf",
            "sqlml.frames",
            "sqlml.progress",
            "sqlml.plots",
            "sqlml.query.tokens",
            "sqlml.query.params",
            "sqlml.query.parser",
            "sqlml.query.statements",
            "sqlml.query.classify",
            "sqlml.query",  # the package's __init__ alone
        ),
    ),
    ("models", ("sqlml.models",)),
    ("optimizer", ("sqlml.optimizer",)),
    ("front end", ("sqlml.query.router", "sqlml.query.batch", "sqlml.query.source_calls", "sqlml.connection")),
    ("features", ("sqlml.labeling", "sqlml.validation", "sqlml.training", "sqlml.serving", "sqlml.incremental")),
    (
        "entry points",
        ("sqlml", "sqlml.__main__", "sqlml.wiring", "sqlml.cli", "sqlml.shell", "sqlml.demo", "sqlml.datasets", "sqlml.views", "sqlml.report"),
    ),
]

FEATURES = dict(LAYERS)["features"]

#: Feature areas that may import another one: (importer, imported), each with its reason.
BETWEEN_FEATURES = {
    ("sqlml.training", "sqlml.validation"),  # CREATE MODEL ... WITH (validate := 'schema')
}

_MODULE_PATH = re.compile(r"^(sqlml(?:\.\w+)+)(?::\w+)?$")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _owner(module: str) -> tuple[int, str]:
    """(layer index, the table entry) of the longest entry that covers ``module``."""
    best: tuple[int, str] | None = None
    for index, (_, entries) in enumerate(LAYERS):
        for entry in entries:
            covers = module == entry or (module.startswith(entry + ".") and entry not in ("sqlml", "sqlml.query"))
            if covers and (best is None or len(entry) > len(best[1])):
                best = (index, entry)
    if best is None:
        raise LookupError(module)
    return best


def _area(module: str) -> str | None:
    return next((f for f in FEATURES if module == f or module.startswith(f + ".")), None)


@cache
def imports_of(module: str) -> frozenset[str]:
    """Every sqlml module that ``module`` imports or names in a string."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "sqlml")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source.split(".")[0] != "sqlml":
                continue
            for alias in node.names:
                child = f"{source}.{alias.name}"
                found.add(child if child in MODULES else source)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = _MODULE_PATH.match(node.value)
            if match and match.group(1) in MODULES:
                found.add(match.group(1))
    found.discard(module)
    return frozenset(found)


def test_every_module_has_a_layer():
    unplaced = []
    for module in MODULES:
        try:
            _owner(module)
        except LookupError:
            unplaced.append(module)
    assert unplaced == [], f"put these in a layer of LAYERS (and ARCHITECTURE.md): {unplaced}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_follow_the_layers(module):
    layer, _ = _owner(module)
    area = _area(module)
    wrong = []
    for imported in sorted(imports_of(module)):
        other, _ = _owner(imported)
        if other > layer:
            wrong.append(f"{imported} (layer {LAYERS[other][0]!r})")
        elif other == layer and area is not None:
            target = _area(imported)
            if target != area and (area, target) not in BETWEEN_FEATURES:
                wrong.append(f"{imported} (another feature area)")
    assert wrong == [], f"{module} (layer {LAYERS[layer][0]!r}) must not import {wrong}"


def _folder(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_no_two_folders_import_each_other():
    edges = {(_folder(m), _folder(i)) for m in MODULES for i in imports_of(m) if _folder(m) != _folder(i)}
    both = sorted((a, b) for a, b in edges if (b, a) in edges and a < b)
    assert both == []


@pytest.mark.parametrize("module", ["sqlml.connection", "sqlml.session", "sqlml.catalog", "sqlml.query.router"])
def test_the_core_names_no_feature_area(module):
    assert [i for i in imports_of(module) if _area(i)] == []


def test_the_check_sees_lazy_imports_and_handler_strings():
    named = imports_of("sqlml.wiring")
    assert {"sqlml.labeling.statements", "sqlml.optimizer.statements", "sqlml.labeling.explain"} <= named
    assert "sqlml.query.batch" in imports_of("sqlml.query.router")  # imported inside a function


def test_architecture_md_states_the_same_layers():
    text = (PACKAGE.parent / "ARCHITECTURE.md").read_text()
    for layer, entries in LAYERS:
        assert f"| {layer} |" in text, f"ARCHITECTURE.md lacks the layer {layer!r}"
        for entry in entries:
            shown = "sqlml/__init__" if entry == "sqlml" else entry.removeprefix("sqlml.").replace(".", "/")
            assert f"`{shown}" in text, f"ARCHITECTURE.md does not place {entry} in a layer"
