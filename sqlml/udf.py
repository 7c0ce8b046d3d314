"""Declaring SQL functions implemented in Python, and registering them on a connection.

The built-in functions live in the top-level ``udfs/`` folder (shipped inside the
wheel); each module there declares its functions with the decorators below:

    @scalar_function("ml_predict", params=None, returns="VARCHAR")
    def ml_predict(session, model, *features): ...

    @table_function("ml_catalog", columns=[("kind", "VARCHAR"), ("name", "VARCHAR")])
    def ml_catalog(session): return [{"kind": ..., "name": ...}, ...]

A table function becomes a scalar UDF returning ``LIST(STRUCT(...))`` behind a TEMP
table macro that unnests it (DuckDB 2.0 has no Python table-function API), so
``SELECT * FROM ml_catalog()`` works anywhere SQL does, named parameters included.

``FUNCTIONS`` (name -> ``Function``) is a plain dict; print it to see what exists.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlml.errors import SqlmlError, UdfError
from sqlml.resources import resource_dir

TABLE_UDF_PREFIX = "__sqlml_tf_"


@dataclass
class Function:
    name: str
    fn: Callable[..., Any]
    returns: str
    params: list[str] | None = None  # None: variable arguments
    vectorized: bool = False  # Arrow UDF (chunks of up to 2048 rows) or row-at-a-time
    null_handling: str = "special"  # 'special': NULL arguments reach Python as None
    side_effects: bool = False
    #: table functions only: output columns, positional and named parameters
    columns: list[tuple[str, str]] | None = None
    positional: list[str] = field(default_factory=list)
    named: dict[str, tuple[str, Any]] = field(default_factory=dict)  # name -> (type, default)
    #: table functions only: the parameters that name a table or query to read. A call whose
    #: arguments are constants runs before its statement, on the caller's connection
    #: (sqlml.query.source_calls), so it sees registered views, DataFrames and open transactions.
    sources: tuple[str, ...] = ()
    #: run before its statement on the caller's connection even without ``sources`` (a
    #: function that reads through sqlml's own statements, e.g. ml_report)
    runs_first: bool = False
    doc: str = ""

    @property
    def is_table(self) -> bool:
        return self.columns is not None

    @property
    def udf_name(self) -> str:
        return TABLE_UDF_PREFIX + self.name if self.is_table else self.name


FUNCTIONS: dict[str, Function] = {}
_loaded = False
_load_lock = threading.Lock()


def scalar_function(
    name: str,
    *,
    returns: str,
    params: Sequence[str] | None = (),
    vectorized: bool = False,
    null_handling: str = "special",
    side_effects: bool = False,
):
    """Declare a scalar SQL function ``name``; the Python function gets the Session first."""

    def decorate(fn):
        FUNCTIONS[name] = Function(
            name=name,
            fn=fn,
            returns=returns,
            params=None if params is None else list(params),
            vectorized=vectorized,
            null_handling=null_handling,
            side_effects=side_effects,
            doc=(fn.__doc__ or "").strip(),
        )
        return fn

    return decorate


def table_function(
    name: str,
    *,
    columns: Sequence[tuple[str, str]],
    params: Sequence[tuple[str, str]] = (),
    named: Sequence[tuple[str, str, Any]] = (),
    side_effects: bool = True,
    sources: Sequence[str] = (),
    runs_first: bool = False,
):
    """Declare a table function ``name(params..., named := default...)``.

    The Python function gets the Session, then every parameter in order, and returns
    rows: a list of dicts or tuples, or a ``pyarrow.Table``. ``sources`` names the
    parameters that hold a table or query the function reads.
    """

    def decorate(fn):
        col_list = list(columns)
        col_names = [c for c, _ in col_list]
        struct = "STRUCT(" + ", ".join(f"{_quote(c)} {t}" for c, t in col_list) + ")[]"

        def rows(session, *args):
            return _as_dicts(fn(session, *args), col_names)

        FUNCTIONS[name] = Function(
            name=name,
            fn=rows,
            returns=struct,
            params=[t for _, t in params] + [t for _, t, _ in named],
            side_effects=side_effects,
            columns=col_list,
            positional=[p for p, _ in params],
            named={n: (t, d) for n, t, d in named},
            sources=tuple(sources),
            runs_first=runs_first or bool(sources),
            doc=(fn.__doc__ or "").strip(),
        )
        return fn

    return decorate


def load_builtin() -> dict[str, Function]:
    """Import every module of ``udfs/`` once per process; their decorators fill FUNCTIONS."""
    global _loaded
    with _load_lock:
        if not _loaded:
            for path in sorted(resource_dir("udfs").glob("*.py")):
                if path.name.startswith("_"):
                    continue
                module_name = f"sqlml_udfs.{path.stem}"
                spec = importlib.util.spec_from_file_location(module_name, path)
                assert spec is not None and spec.loader is not None  # a .py file always has a loader
                module = importlib.util.module_from_spec(spec)
                sys.modules[module_name] = module
                spec.loader.exec_module(module)
            _loaded = True
    return FUNCTIONS


def bind(function: Function, session) -> Callable[..., Any]:
    """The callable DuckDB calls: the Session injected, errors stashed for the caller."""
    fn = function.fn
    label = function.name

    def call(*args):
        try:
            return fn(session, *args)
        except Exception as error:  # noqa: BLE001 - every error goes back typed
            if not isinstance(error, SqlmlError):
                wrapped = UdfError(label, error)
                wrapped.__cause__ = error
                error = wrapped
            raise RuntimeError(f"{error} {session.errors.stash(error)}") from None

    if function.params is not None:
        # DuckDB checks the Python signature against the declared parameter types.
        call.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [inspect.Parameter(f"arg{i}", inspect.Parameter.POSITIONAL_ONLY) for i in range(len(function.params))]
        )
    return call


def register_functions(duck, session) -> None:
    """Create every declared function on ``duck``'s database instance."""
    for function in load_builtin().values():
        _drop_if_present(duck, function.udf_name)
        duck.create_function(
            function.udf_name,
            bind(function, session),
            function.params,
            function.returns,
            type="arrow" if function.vectorized else "native",
            null_handling=function.null_handling,
            exception_handling="default",
            side_effects=function.side_effects,
        )


def create_macros(duck) -> None:
    """The TEMP table macros that front the table functions (per connection and cursor)."""
    for function in load_builtin().values():
        if function.is_table:
            duck.execute(table_macro_sql(function))


def table_macro_sql(function: Function) -> str:
    """``CREATE TEMP MACRO f(a, b := default) AS TABLE SELECT unnest(udf(a, b), ...)``.

    Every name here comes from the declarations in ``udfs/``, never from user text.
    """
    signature = [_quote(p) for p in function.positional]
    signature += [f"{_quote(n)} := {_sql_literal(d)}" for n, (_, d) in function.named.items()]
    call_args = ", ".join(_quote(p) for p in [*function.positional, *function.named])
    return (
        f"CREATE OR REPLACE TEMP MACRO {_quote(function.name)}({', '.join(signature)}) "
        f"AS TABLE SELECT unnest({_quote(function.udf_name)}({call_args}), max_depth := 2)"
    )


def _drop_if_present(duck, name: str) -> None:
    try:
        duck.remove_function(name)
    except Exception:  # noqa: BLE001 - not registered yet
        pass


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _sql_literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"no SQL literal for {value!r}")


def _as_dicts(result: Any, columns: list[str]) -> list[dict[str, Any]]:
    if result is None:
        return []
    if hasattr(result, "to_pylist"):  # pyarrow.Table
        return result.select(columns).to_pylist()
    rows = []
    for row in result:
        if isinstance(row, dict):
            rows.append({c: row.get(c) for c in columns})
        else:
            rows.append(dict(zip(columns, row, strict=True)))
    return rows
