"""Multi-query optimization: model calls shared by several statements are computed once.

``con.sql_many([...])`` and scripts (``con.sql("q1; q2; q3")``) hand their plain
statements to ``plan`` together (``sqlml.query.batch`` decides which). Each statement's model calls are hoisted (``distinct_inputs``); calls that
compute the same thing (same function, model version and constant arguments) are
grouped, and each group's distinct inputs, the UNION over its statements, go through
the model once, into a TEMP table (``shared_calls``). Each statement is then rewritten
to read that table through one join on a 64-bit key (``optimizer.shared_results``): it
no longer computes its distinct inputs, looks up a cache or calls the model.

N queries scoring overlapping rows with the same model therefore cost one model pass
over the union of their inputs plus N times their own relational work. The persistent
prediction cache, when on, supplies the inputs it has and stores the new ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlml import optimizer
from sqlml.optimizer.runtime import cache_store


@dataclass
class Planned:
    text: str
    sql: str  # what runs: the shared rewrite, or the text (optimized as usual when it runs)
    shared: bool = False  # reads shared results
    checked: bool = False  # DuckDB binds ``sql`` (else the caller falls back to the text)
    tree: Any = None  # the rewrite in progress; None when this statement does not share
    context: Any = None
    writes: bool = False
    verify: bool = False  # an earlier statement may write what this one reads


def plan(connection, texts: list[str], *, check_queries: bool = True) -> list[Planned]:
    """Rewrite every statement and compute the model calls they share; nothing else runs.

    Statements that write are always checked to bind before they are handed back;
    queries only with ``check_queries`` (sql_many finds out when it makes the relation).
    """
    from sqlml.optimizer import shared_results
    from sqlml.optimizer.prediction_cache import signature

    off = optimizer.disabled_rules(connection)
    store = None if "prediction_cache" in off else cache_store.store_for(connection)
    # sharing hoists every call (the cache's own hoisting is what this replaces)
    disabled = (off - {"distinct_inputs"}) | {"prediction_cache"}
    plans = [_prepare(connection, text, disabled) for text in texts]
    versions: dict[tuple, Any] = {}
    writes_before = False
    for p in plans:
        p.verify = writes_before  # data the table was filled from may have changed
        writes_before = writes_before or p.writes

    rounds = max((len(p.context.notes.get("hoisted", [])) for p in plans if p.tree is not None), default=0)
    for round_ in range(rounds):  # a statement's later calls read keys filtered by its earlier ones
        groups: dict[tuple, Any] = {}
        members: dict[tuple, list] = {}
        for p in plans:
            hoisted = p.context.notes.get("hoisted", []) if p.tree is not None else []
            if round_ >= len(hoisted):
                continue
            h = hoisted[round_]
            key = (h.function.name, h.model)
            if key not in versions:
                versions[key] = h.function.version(connection, h.model) if h.function.version else None
            version = versions[key]
            if version is None:
                continue
            sig = signature(h.call, h.key_columns)
            group_key = (h.function.name, sig, version.token, len(h.key_columns))
            if group_key not in groups:
                groups[group_key] = _shared_call(h, version, sig)
                members[group_key] = []
            groups[group_key].with_inputs = groups[group_key].with_inputs or p.verify
            keys_sql = _keys_sql(h)
            if keys_sql not in groups[group_key].keys_sql:  # statements over the same rows
                groups[group_key].keys_sql.append(keys_sql)
            members[group_key].append((p, h, sig, version))
        for group_key, call in groups.items():
            table = call.name(round_)
            if not _build(connection, call, table, store, members[group_key]):
                continue
            for p, h, sig, version in members[group_key]:
                if p.tree is not None:
                    shared_results.read_shared(h, table, sig, version.token, verify=p.verify)
                    p.shared = True

    for p in plans:
        if not p.shared:
            continue
        p.sql = p.tree.sql(dialect="duckdb", copy=False, normalize_functions=False)  # the tree's last use
        if p.writes or check_queries:
            p.checked = True
            if optimizer.binds(connection, p.sql, p.context.placeholders) is not None:
                p.sql, p.shared = p.text, False
    return plans


#: Leading words of statements that only read.
_READING = frozenset({"SELECT", "WITH", "FROM", "VALUES", "TABLE", "DESCRIBE", "SHOW", "SUMMARIZE", "EXPLAIN"})


def _prepare(connection, text: str, disabled) -> Planned:
    from sqlglot import exp

    from sqlml.optimizer.model_functions import mentions_model_call

    if not mentions_model_call(text):  # not parsed: only whether it may write matters
        first = text.lstrip().lstrip("(").split(None, 1)[0].upper() if text.strip() else ""
        return Planned(text, text, writes=first not in _READING)
    context, tree = optimizer.apply_rules(text, connection=connection, disabled=disabled, store=None)
    planned = Planned(text, text, context=context)
    if tree is None:
        planned.writes = True  # not parsed: assume it may write
        return planned
    planned.writes = not isinstance(tree, (exp.Select, exp.Union, exp.Subquery))
    if context.fired and not context.steps:  # a bulk stream (a step) scores its own rows
        planned.tree = tree
    return planned


def _shared_call(h, version, sig: str):
    from sqlglot import exp

    from sqlml.optimizer.runtime.shared_calls import SharedCall, key_names
    from sqlml.optimizer.scopes import named_constants

    call = h.call.copy()
    names = key_names(len(h.key_columns))
    for node in list(call.find_all(exp.Column)):
        if node.name in h.key_columns and not node.table:
            node.replace(exp.column(names[h.key_columns.index(node.name)]))
    return SharedCall(
        function=h.function,
        model=version.name or h.model,
        reference=h.model,
        version=version,
        signature=sig,
        width=len(h.key_columns),
        call_sql=call.sql(dialect="duckdb", copy=False, normalize_functions=False),  # a copy already
        named=named_constants(h.call),
    )


def _keys_sql(h) -> str:
    from sqlml.optimizer.prediction_cache import keys_query

    return keys_query(h).sql(dialect="duckdb", copy=False, normalize_functions=False)  # a new tree


def _build(connection, call, table: str, store, members) -> bool:
    """Build the shared table; a statement whose keys DuckDB cannot compute yet (it reads
    a table an earlier statement creates) leaves the group. False: nothing shared."""
    import duckdb

    from sqlml.optimizer.runtime.shared_calls import build

    try:
        with connection.session.translate_errors():
            build(connection, call, table, store)
        return True
    except duckdb.Error:
        pass
    keep = [i for i, sql in enumerate(call.keys_sql) if optimizer.binds(connection, sql, {}) is None]
    if not keep or len(keep) == len(call.keys_sql):
        return False  # not a binding problem: the statements run unshared (and report it)
    call.keys_sql = [call.keys_sql[i] for i in keep]
    members[:] = [members[i] for i in keep]
    try:
        with connection.session.translate_errors():
            build(connection, call, table, store)
    except duckdb.Error:
        return False
    return True
