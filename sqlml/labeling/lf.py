"""Labeling functions: SQL expressions, Python functions over Arrow arrays, and builders.

* SQL LFs (``CREATE LABELING FUNCTION name ON table AS expr``) return a class name
  (VARCHAR) or a 0-based class index (integer); NULL abstains (and -1 too, Snorkel's
  convention, for integer LFs). They run inside DuckDB, all of a table's LFs in one scan.
* Python LFs: ``@sqlml.labeling_function(on=..., inputs=[...])`` gets one Arrow array
  per input column (chunks of at most 2048 rows) and returns as many class names /
  indexes / None; ``con.register(fn)`` records it, APPLY runs it as an Arrow UDF.
* Builders (``keyword_lf``, ``regex_lf``, ``threshold_lf``, ``lookup_lf``) compile to SQL
  expressions, so they run at SQL speed; ``con.register(builder)`` creates them.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb

from sqlml import catalog
from sqlml.errors import DataError, InvalidOptionError, LabelingError, SqlmlSyntaxError
from sqlml.labeling import store
from sqlml.labeling.store import LabelSet, LFRow
from sqlml.query.tokens import tokenize
from sqlml.sqlutil import quote_ident, quote_literal, split_name, table_ref

INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"}
LF_OPTIONS = ("classes", "fault_tolerant")


def fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def source_columns(duck, parts: list[str]) -> dict[str, tuple[str, str]]:
    """lower-case name -> (name, DuckDB type) of a table; DataError when it does not exist."""
    try:
        relation = duck.sql(f"SELECT * FROM {table_ref(parts)} LIMIT 0")
    except duckdb.CatalogException as error:
        name = ".".join(parts)
        raise DataError(f"table {name!r} does not exist: {str(error).splitlines()[0]}", obj=name) from None
    return {c.lower(): (c, str(t)) for c, t in zip(relation.columns, relation.types, strict=True)}


def check_expression(expression: str, name: str) -> None:
    """An LF expression must stay one expression: balanced brackets, no statement break."""
    depth = 0
    for tok in tokenize(expression):
        if tok.kind == "operator" and tok.text in ("(", "[", "{"):
            depth += 1
        elif tok.kind == "operator" and tok.text in (")", "]", "}"):
            depth -= 1
        elif tok.kind == "operator" and tok.text == ";":
            depth = -1
        if depth < 0:
            break
    if depth != 0:
        raise SqlmlSyntaxError(f"labeling function {name!r}: the expression is not one SQL expression", expression, 0)


def output_kind(type_name: str, name: str) -> str:
    base = type_name.upper()
    if base == "VARCHAR" or base.startswith("ENUM"):
        return "name"
    if base in INTEGER_TYPES:
        return "index"
    if base == '"NULL"' or base == "NULL":
        return "name"
    raise LabelingError(
        f"labeling function {name!r} returns {type_name}; it must return a class name (VARCHAR) or a "
        f"0-based class index (integer), and NULL to abstain, e.g. CASE WHEN ... THEN 'spam' END."
    )


def resolve_classes(duck, table: str, classes: Any, lf_name: str) -> tuple[LabelSet | None, list[str]]:
    """The table's label set (None if new) and its classes, checking a re-declaration."""
    label_set = store.get_label_set(duck, table)
    if classes is not None:
        if not isinstance(classes, (list, tuple)) or len(classes) < 2 or not all(isinstance(c, (str, int)) for c in classes):
            raise InvalidOptionError(f"labeling function {lf_name!r}", "classes", "give a list of at least two class names")
        classes = [str(c) for c in classes]
        if len(set(classes)) != len(classes):
            raise InvalidOptionError(f"labeling function {lf_name!r}", "classes", f"duplicate class names in {classes}")
    if label_set is None:
        if classes is None:
            raise LabelingError(
                f"table {table!r} has no classes yet: declare them with its first labeling function, "
                f"e.g. CREATE LABELING FUNCTION {lf_name} ON {table} WITH (classes := ['ham', 'spam']) AS ..."
            )
        return None, classes
    if classes is not None and classes != label_set.classes:
        others = [lf.name for lf in store.lfs_of(duck, table) if lf.name != lf_name]
        if others:
            raise LabelingError(
                f"table {table!r} declares classes {label_set.classes}, labeling function {lf_name!r} gives "
                f"{classes}; classes are declared once per table (drop its labeling functions to change them)."
            )
        duck.execute("UPDATE sqlml.label_sets SET classes = ? WHERE table_name = ?", [classes, table])
        label_set.classes = classes
    return label_set, label_set.classes


def save_lf(duck, *, name: str, parts: list[str], classes: Any, kind: str, definition: str, output: str,
            inputs: list[str] | None, fault_tolerant: bool, replace: bool) -> LFRow:
    """Create or replace the catalog row; unchanged definitions keep their votes."""
    table = store.canonical_table(parts)
    existing = store.get_lf(duck, name)
    catalog.require_new(duck, store.LF_KIND, name, replace=replace, exists=existing is not None)
    if existing is not None and existing.table != table:
        from sqlml.labeling.votes import drop_votes_of

        drop_votes_of(duck, existing)
        existing = None
    label_set, classes = resolve_classes(duck, table, classes, name)
    if label_set is None:
        label_set = store.create_label_set(duck, table, parts, classes)
    else:
        store.lock_label_set(duck, table)
    lf = LFRow(
        name=name,
        table=table,
        lf_id=existing.lf_id if existing is not None else store.next_lf_id(duck, table),
        kind=kind,
        definition=definition,
        inputs=inputs,
        output=output,
        fault_tolerant=fault_tolerant,
        fingerprint=fingerprint(kind, definition, output, inputs, fault_tolerant, classes),
        applied_fingerprint=existing.applied_fingerprint if existing is not None else None,
        faults=existing.faults if existing is not None else 0,
    )
    store.put_lf(duck, lf)
    return lf


def create_sql_lf(duck, name: str, table_parts: list[str], expression: str, options: dict, replace: bool) -> LFRow:
    unknown = set(options) - set(LF_OPTIONS)
    if unknown:
        raise InvalidOptionError(f"CREATE LABELING FUNCTION {name}", sorted(unknown)[0], allowed=LF_OPTIONS)
    catalog.check_name(store.LF_KIND, name)
    table = store.canonical_table(table_parts)
    check_expression(expression, name)
    source_columns(duck, table_parts)
    try:
        relation = duck.sql(f"SELECT ({expression}) AS v FROM {table_ref(table_parts)} LIMIT 0")
    except duckdb.Error as error:
        raise DataError(
            f"labeling function {name!r} on {table!r} does not bind: {str(error).splitlines()[0]}", obj=name
        ) from None
    output = output_kind(str(relation.types[0]), name)
    return save_lf(duck, name=name, parts=table_parts, classes=options.get("classes"), kind="sql", definition=expression,
                   output=output, inputs=None, fault_tolerant=False, replace=replace)


# -- Python labeling functions ------------------------------------------------------------


@dataclass
class PythonLabelingFunction:
    """A Python function over Arrow arrays that votes; call it as the plain function."""

    fn: Callable[..., Any]
    name: str
    on: str
    inputs: list[str]
    classes: list[str] | None = None
    fault_tolerant: bool = False
    source: str = field(default="", repr=False)

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    def __sqlml_register__(self, connection) -> None:
        from sqlml.transaction import transaction

        duck = connection.duckdb
        parts = store.table_parts(self.on)
        table = store.canonical_table(parts)
        with transaction(duck):
            columns = source_columns(duck, parts)
            missing = [c for c in self.inputs if c.lower() not in columns]
            if missing:
                raise DataError(
                    f"labeling function {self.name!r}: table {table!r} has no column {missing[0]!r} "
                    f"(it has {', '.join(v[0] for v in columns.values())}).", obj=self.name, column=missing[0]
                )
            save_lf(duck, name=self.name, parts=parts, classes=self.classes, kind="python", definition=self.source,
                    output="auto", inputs=list(self.inputs), fault_tolerant=self.fault_tolerant, replace=True)
        connection.session.registered.setdefault(store.LF_KIND, {})[self.name] = self


def labeling_function(*, on: str, inputs: Sequence[str], name: str | None = None,
                      classes: Sequence[str] | None = None, fault_tolerant: bool = False):
    """Decorator: ``@sqlml.labeling_function(on="comments", inputs=["text"])``.

    The function receives one ``pyarrow.Array`` per input and returns a sequence (Arrow
    array, numpy array or list) of class names or indexes, None to abstain. With
    ``fault_tolerant=True`` a row on which it raises abstains and is counted in
    ``faults``; otherwise APPLY fails naming the function and the row's key.
    """
    if isinstance(inputs, str):
        inputs = [inputs]

    def decorate(fn):
        try:
            source = textwrap.dedent(inspect.getsource(fn))
        except (OSError, TypeError):
            source = getattr(fn, "__qualname__", repr(fn))
        return PythonLabelingFunction(
            fn=fn, name=name or fn.__name__, on=on, inputs=list(inputs),
            classes=list(classes) if classes is not None else None, fault_tolerant=fault_tolerant, source=source,
        )

    return decorate


# -- builders that compile to SQL ------------------------------------------------------------


@dataclass
class SqlLabelingFunction:
    """A labeling function written for you as SQL; ``con.register(lf)`` creates (or replaces) it."""

    name: str
    on: str
    expression: str
    classes: list[str] | None = None

    def create_statement(self) -> str:
        with_classes = ""
        if self.classes is not None:
            with_classes = " WITH (classes := [" + ", ".join(quote_literal(c) for c in self.classes) + "])"
        return (
            f"CREATE OR REPLACE LABELING FUNCTION {quote_ident(self.name)} ON {table_ref(split_name(self.on))}"
            f"{with_classes} AS {self.expression}"
        )

    def __sqlml_register__(self, connection) -> None:
        connection.sql(self.create_statement())


def _label_sql(label: str | int) -> str:
    if isinstance(label, bool) or not isinstance(label, (str, int)):
        raise InvalidOptionError("labeling function builder", "label", "give a class name or a class index")
    return quote_literal(label) if isinstance(label, str) else str(int(label))


def keyword_lf(name: str, *, on: str, column: str, keywords: Sequence[str], label: str | int,
               case_sensitive: bool = False, classes: Sequence[str] | None = None) -> SqlLabelingFunction:
    """Votes ``label`` when ``column`` contains any of ``keywords`` (a substring test)."""
    if isinstance(keywords, str):
        keywords = [keywords]
    if not keywords:
        raise InvalidOptionError(f"keyword_lf {name!r}", "keywords", "give at least one keyword")
    col = quote_ident(column)
    haystack = col if case_sensitive else f"lower({col})"
    tests = " OR ".join(
        f"contains({haystack}, {quote_literal(k if case_sensitive else k.lower())})" for k in keywords
    )
    return SqlLabelingFunction(name, on, f"CASE WHEN {tests} THEN {_label_sql(label)} END", _classes(classes))


def regex_lf(name: str, *, on: str, column: str, pattern: str, label: str | int, case_sensitive: bool = False,
             classes: Sequence[str] | None = None) -> SqlLabelingFunction:
    """Votes ``label`` when ``column`` matches the regular expression ``pattern`` (RE2 syntax)."""
    flags = "" if case_sensitive else ", 'i'"
    expr = f"CASE WHEN regexp_matches({quote_ident(column)}, {quote_literal(pattern)}{flags}) THEN {_label_sql(label)} END"
    return SqlLabelingFunction(name, on, expr, _classes(classes))


_OPERATORS = {">": ">", ">=": ">=", "<": "<", "<=": "<=", "=": "=", "!=": "<>", "<>": "<>"}


def threshold_lf(name: str, *, on: str, column: str, op: str, value: float, label: str | int,
                 otherwise: str | int | None = None, classes: Sequence[str] | None = None) -> SqlLabelingFunction:
    """Votes ``label`` when ``column op value`` (e.g. ``op='>', value=15``), else ``otherwise``
    (None: abstain). NULL inputs abstain."""
    if op not in _OPERATORS:
        raise InvalidOptionError(f"threshold_lf {name!r}", "op", f"use one of {', '.join(_OPERATORS)}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidOptionError(f"threshold_lf {name!r}", "value", "give a number")
    col = quote_ident(column)
    expr = f"CASE WHEN {col} {_OPERATORS[op]} {value!r} THEN {_label_sql(label)}"
    if otherwise is not None:
        expr += f" WHEN {col} IS NOT NULL THEN {_label_sql(otherwise)}"
    return SqlLabelingFunction(name, on, expr + " END", _classes(classes))


def lookup_lf(name: str, *, on: str, column: str, table: str, key: str, label_column: str,
              classes: Sequence[str] | None = None) -> SqlLabelingFunction:
    """Distant supervision: the label that lookup ``table`` gives ``column`` (joined on
    ``table.key``); rows without a match abstain. Several matches: the smallest label."""
    src = table_ref(split_name(on))
    expr = (
        f"(SELECT min(__lookup.{quote_ident(label_column)}) FROM {table_ref(split_name(table))} AS __lookup "
        f"WHERE __lookup.{quote_ident(key)} = {src}.{quote_ident(column)})"
    )
    return SqlLabelingFunction(name, on, expr, _classes(classes))


def _classes(classes):
    return None if classes is None else [str(c) for c in classes]
