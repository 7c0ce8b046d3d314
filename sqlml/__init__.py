"""sqlml: DuckDB as the home of a machine-learning project.

``import sqlml`` does no work: names below load on first use, and neither torch nor
OpenCV is imported until a feature needs them.

    >>> import sqlml
    >>> con = sqlml.connect()              # or sqlml.connect("project.duckdb")
    >>> con.sql("SELECT 42 AS answer").fetchall()
    [(42,)]
"""

from __future__ import annotations

import importlib
import logging

from sqlml import wiring as _wiring  # noqa: F401 - fills the core's tables with the feature areas (names only)
from sqlml.errors import (
    ConflictError as ConflictError,
    DataError as DataError,
    InvalidOptionError as InvalidOptionError,
    LabelingError as LabelingError,
    ObjectExistsError as ObjectExistsError,
    ParameterError as ParameterError,
    ReadOnlyError as ReadOnlyError,
    ServingError as ServingError,
    SqlmlError as SqlmlError,
    SqlmlSyntaxError as SqlmlSyntaxError,
    TrainingError as TrainingError,
    UdfError as UdfError,
    UnknownObjectError as UnknownObjectError,
    ValidationError as ValidationError,
)

__version__ = "0.1.0"

# The ``sqlml`` logger (statements with timings, fallbacks, resumed runs) is silent unless
# the application configures logging, e.g. logging.basicConfig(level=logging.INFO).
logging.getLogger("sqlml").addHandler(logging.NullHandler())

#: Public names loaded on first use: name -> "module:attribute".
_LAZY = {
    "connect": "sqlml.connection:connect",
    "Connection": "sqlml.connection:Connection",
    "Relation": "sqlml.relation:Relation",
    "configure_progress": "sqlml.progress:configure",
    "register_architecture": "sqlml.models.architectures:register_architecture",
    "labeling_function": "sqlml.labeling.lf:labeling_function",
    "keyword_lf": "sqlml.labeling.lf:keyword_lf",
    "regex_lf": "sqlml.labeling.lf:regex_lf",
    "threshold_lf": "sqlml.labeling.lf:threshold_lf",
    "lookup_lf": "sqlml.labeling.lf:lookup_lf",
}


def __getattr__(name: str):
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'sqlml' has no attribute {name!r}")
    module_name, _, attribute = target.partition(":")
    value = getattr(importlib.import_module(module_name), attribute)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
