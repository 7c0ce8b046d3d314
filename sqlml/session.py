"""State shared by a Connection, its cursors, and the SQL functions registered for them.

DuckDB registers Python functions on the database instance, so they outlive any one
cursor; each function is bound to the Session that registered it and reaches the
database through fresh cursors (a connection busy with the outer query refuses a
second one).
"""

from __future__ import annotations

import itertools
import re
import threading
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, NoReturn

import duckdb

from sqlml.errors import ERROR_EXPLAINERS

_TOKEN = re.compile(r"\[sqlml-error:(\d+)\]")


class ErrorStash:
    """Keeps exceptions raised inside UDFs so the caller gets the typed original back.

    DuckDB flattens a UDF's exception into ``InvalidInputException`` text. The UDF wrapper
    stashes the original and puts a token in the text; ``reraise`` finds it again.
    """

    def __init__(self, keep: int = 64):
        self._errors: OrderedDict[int, BaseException] = OrderedDict()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._keep = keep

    def stash(self, error: BaseException) -> str:
        with self._lock:
            token = next(self._ids)
            self._errors[token] = error
            while len(self._errors) > self._keep:
                self._errors.popitem(last=False)
        return f"[sqlml-error:{token}]"

    def original(self, error: BaseException) -> BaseException | None:
        match = _TOKEN.search(str(error))
        if not match:
            return None
        with self._lock:
            return self._errors.pop(int(match.group(1)), None)


class Session:
    def __init__(self, duck: duckdb.DuckDBPyConnection, database: str, read_only: bool):
        self.database = database
        self.read_only = read_only
        self.errors = ErrorStash()
        self._root = duck.cursor()
        #: Python objects registered with Connection.register, by kind then name.
        self.registered: dict[str, dict[str, Any]] = {}
        #: Per-session caches (loaded models, hot states), by area then key.
        self.caches: dict[str, dict[Any, Any]] = {}
        self.lock = threading.RLock()
        self._borrowed = threading.local()

    @contextmanager
    def cursor(self):
        """A fresh cursor on the same database, closed afterwards (safe from UDF threads).

        Inside ``borrow(duck)`` the outermost cursor of this thread is ``duck`` itself.
        """
        duck = getattr(self._borrowed, "duck", None)
        if duck is not None:
            self._borrowed.duck = None  # a cursor opened while this one is in use is a fresh one
            try:
                yield duck
            finally:
                self._borrowed.duck = duck
            return
        with self.own_cursor() as cur:
            yield cur

    @contextmanager
    def own_cursor(self):
        """Always a fresh cursor, even inside ``borrow``: for a function's own bookkeeping
        (writes while it streams its source through ``cursor()``)."""
        cur = self._root.cursor()
        try:
            yield cur
        finally:
            cur.close()

    @contextmanager
    def borrow(self, duck):
        """Let ``cursor()`` hand out the caller's connection ``duck`` in this thread.

        An SQL function run before its statement (``sqlml.query.source_calls``) then reads
        what the caller's connection sees: registered views and DataFrames, temporary
        tables, the writes of an open transaction.
        """
        before = getattr(self._borrowed, "duck", None)
        self._borrowed.duck = duck
        try:
            yield
        finally:
            self._borrowed.duck = before

    def query(self, sql: str, params: Any = None) -> list[tuple]:
        with self.cursor() as cur:
            return cur.execute(sql, params).fetchall()

    def arrow(self, sql: str, params: Any = None):
        with self.cursor() as cur:
            return cur.sql(sql, params=params).to_arrow_table()

    def cache(self, area: str) -> dict[Any, Any]:
        with self.lock:
            return self.caches.setdefault(area, {})

    @contextmanager
    def translate_errors(self):
        """Turn a DuckDB error that carries a stashed UDF error into that error."""
        try:
            yield
        except duckdb.Error as error:
            self.reraise(error)

    def reraise(self, error: BaseException) -> NoReturn:
        """Raise the UDF error stashed in ``error``'s text, or ``error`` itself."""
        original = self.errors.original(error)
        if original is None and isinstance(error, (duckdb.CatalogException, duckdb.InvalidInputException, duckdb.BinderException)):
            original = self._explain(error)
        if original is None:
            raise error
        original.__suppress_context__ = True  # keep its own __cause__, hide DuckDB's text
        raise original

    def _explain(self, error: duckdb.Error) -> BaseException | None:
        import importlib

        for target in ERROR_EXPLAINERS:
            module, _, function = target.partition(":")
            explained = getattr(importlib.import_module(module), function)(error, self)
            if explained is not None:
                return explained
        return None
