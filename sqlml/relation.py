"""``Relation``: a DuckDB relation whose errors come back as sqlml's typed errors.

DuckDB relations are lazy: a query runs when it is fetched or shown, long after
``Connection.sql`` returned. The proxy keeps every relation method (chainable, the
results of chained calls wrapped again) and translates errors raised inside sqlml's
SQL functions back into the ``SqlmlError`` that was raised there.
"""

from __future__ import annotations

from typing import Any

import duckdb


class Relation:
    __slots__ = ("_relation", "_session")

    def __init__(self, relation: duckdb.DuckDBPyRelation, session):
        self._relation = relation
        self._session = session

    @property
    def relation(self) -> duckdb.DuckDBPyRelation:
        """The underlying ``duckdb.DuckDBPyRelation``."""
        return self._relation

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._relation, name)
        if not callable(attr):
            return attr
        session = self._session

        def method(*args, **kwargs):
            args = tuple(a._relation if isinstance(a, Relation) else a for a in args)
            with session.translate_errors():
                result = attr(*args, **kwargs)
            if isinstance(result, duckdb.DuckDBPyRelation):
                return Relation(result, session)
            return result

        method.__name__ = name
        method.__doc__ = getattr(attr, "__doc__", None)
        return method

    def __repr__(self) -> str:
        with self._session.translate_errors():
            return repr(self._relation)

    def __str__(self) -> str:
        with self._session.translate_errors():
            return str(self._relation)

    def __len__(self) -> int:
        with self._session.translate_errors():
            return len(self._relation)

    def __dir__(self):
        return sorted(set(dir(self._relation)) | {"relation"})
