"""``sqlml.connect`` and ``Connection``: one DuckDB connection with sqlml's SQL on top."""

from __future__ import annotations

import os
from collections import deque
from typing import Any

import duckdb
from duckdb import DuckDBPyRelation

from sqlml import catalog, frames, macros, udf
from sqlml.errors import SqlmlError
from sqlml.query import router
from sqlml.relation import Relation
from sqlml.session import Session

#: New database files are written in a format the DuckDB 1.5 shell (duckdb-cli) opens.
STORAGE_COMPATIBILITY = "v1.5.0"


def connect(database: str | os.PathLike = ":memory:", *, read_only: bool = False, config: dict | None = None) -> Connection:
    """Open (or create) a database with sqlml's catalog, statements and ``ml_*`` functions.

    A new database file is created in DuckDB's v1.5 storage format so the official DuckDB
    shell can open it too. A read-only connection never writes, not even the catalog.
    """
    database = os.fspath(database)
    config = dict(config or {})
    in_memory = database == ":memory:" or database.startswith(":memory:")
    if not in_memory and not read_only and not os.path.exists(database):
        config.setdefault("storage_compatibility_version", STORAGE_COMPATIBILITY)
    duck = duckdb.connect(database, read_only=read_only, config=config)
    try:
        if not read_only:
            catalog.migrate(duck)
        session = Session(duck, database, read_only)
        udf.register_functions(duck, session)
        connection = Connection(duck, session)
    except BaseException:
        duck.close()
        raise
    return connection


class Connection:
    """Wraps exactly one DuckDB connection; cursors share its Session."""

    def __init__(self, duck: duckdb.DuckDBPyConnection, session: Session):
        self._duck = duck
        self._session = session
        self._pending: deque | None = None  # rows of an sqlml statement run by execute()
        self._pending_description: list | None = None
        # A read-only connection to a database without (or with an older) catalog gets
        # the macros that bind; a read-write one has just been migrated, so all must.
        macros.create_sql_macros(duck, strict=not session.read_only)
        udf.create_macros(duck)

    @classmethod
    def over(cls, duck: duckdb.DuckDBPyConnection, session: Session) -> Connection:
        """A Connection over a DuckDB connection that already has sqlml's macros (no set-up)."""
        connection = cls.__new__(cls)
        connection._duck = duck
        connection._session = session
        connection._pending = None
        connection._pending_description = None
        return connection

    # -- identity ---------------------------------------------------------------------
    @property
    def duckdb(self) -> duckdb.DuckDBPyConnection:
        """The raw ``duckdb`` connection."""
        return self._duck

    @property
    def session(self) -> Session:
        return self._session

    @property
    def database(self) -> str:
        return self._session.database

    @property
    def read_only(self) -> bool:
        return self._session.read_only

    def __repr__(self) -> str:
        mode = " read-only" if self.read_only else ""
        return f"<sqlml.Connection {self.database!r}{mode}>"

    # -- running SQL --------------------------------------------------------------------
    def sql(self, query: str, params: Any = None) -> Relation | None:
        """Run SQL (several statements allowed); a relation for a query, else None."""
        self._pending = None
        return router.run_script(self, query, params, mode="sql", frame=frames.caller_frame())

    def execute(self, query: str, params: Any = None) -> Connection:
        """Run SQL DB-API style; fetch the last statement's rows with ``fetchall()`` and co."""
        self._pending = None
        where, relation = router.run_script(self, query, params, mode="execute", frame=frames.caller_frame())
        if where == "relation":
            if relation is None:
                self._pending, self._pending_description = deque(), None
            else:
                with self._session.translate_errors():
                    self._pending = deque(relation.fetchall())
                    self._pending_description = relation.description
        return self

    def sql_many(self, statements: list[str]) -> list[Relation | None]:
        """Run statements in order, computing model calls they share only once.

        One result per statement, as ``sql`` gives it (see sqlml.query.batch).
        """
        from sqlml.query.batch import sql_many

        self._pending = None
        return sql_many(self, list(statements))

    def optimize(self, statement: str) -> str:
        """The statement after the optimizer rules for model calls (see sqlml.optimizer)."""
        from sqlml import optimizer

        return optimizer.rewrite(statement, connection=self).sql

    def wrap(self, relation: DuckDBPyRelation) -> Relation:
        return Relation(relation, self._session)

    # -- fetching the result of execute() ---------------------------------------------------
    def fetchall(self) -> list[tuple]:
        if self._pending is not None:
            rows, self._pending = list(self._pending), deque()
            return rows
        try:  # a try, not translate_errors(): fetching a point query's row is the hot path
            return self._duck.fetchall()
        except duckdb.Error as error:
            self._session.reraise(error)

    def fetchone(self) -> tuple | None:
        if self._pending is not None:
            return self._pending.popleft() if self._pending else None
        try:
            return self._duck.fetchone()
        except duckdb.Error as error:
            self._session.reraise(error)

    def fetchmany(self, size: int = 1) -> list[tuple]:
        if self._pending is not None:
            return [self._pending.popleft() for _ in range(min(size, len(self._pending)))]
        try:
            return self._duck.fetchmany(size)
        except duckdb.Error as error:
            self._session.reraise(error)

    @property
    def description(self):
        if self._pending is not None:
            return self._pending_description
        return self._duck.description

    # -- Python objects ------------------------------------------------------------------------
    def register(self, obj: Any, name: Any = None) -> Connection:
        """Register a Python object sqlml knows, or expose data as a view.

        ``register(fn)`` takes anything with ``__sqlml_register__`` (labeling functions,
        architectures, ...); ``register("view", data)`` and ``register(data, "view")``
        expose an Arrow table, reader or DataFrame as a view, as DuckDB does.
        """
        if isinstance(obj, str) and name is not None:
            obj, name = name, obj
        if name is None:
            hook = getattr(obj, "__sqlml_register__", None)
            if hook is None:
                raise SqlmlError(
                    f"cannot register {type(obj).__name__}: sqlml registers labeling functions, "
                    f"architectures and models; to expose data as a view use register('name', data)."
                )
            hook(self)
        else:
            self._duck.register(name, obj)
        return self

    # -- cursors, transactions, lifetime --------------------------------------------------
    def cursor(self) -> Connection:
        """A new connection to the same database (one per thread), sharing this Session."""
        return Connection(self._duck.cursor(), self._session)

    def begin(self) -> Connection:
        self._duck.begin()
        return self

    def commit(self) -> Connection:
        self._duck.commit()
        return self

    def rollback(self) -> Connection:
        self._duck.rollback()
        return self

    def close(self) -> None:
        self._duck.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        """Everything else DuckDB's connection offers (``table``, ``read_csv``, ...)."""
        if name.startswith("_"):
            raise AttributeError(name)
        attr = getattr(self._duck, name)
        if not callable(attr):
            return attr
        session = self._session

        def method(*args, **kwargs):
            frame = frames.caller_frame()
            with session.translate_errors():
                result = frames.call_in_frame(frame, attr, *args, **kwargs)
            if isinstance(result, duckdb.DuckDBPyRelation):
                return Relation(result, session)
            if result is self._duck:
                return self
            return result

        method.__name__ = name
        return method
