"""``Relation``: a DuckDB relation whose errors come back as sqlml's typed errors.

DuckDB relations are lazy: a query runs when it is fetched or shown, long after
``Connection.sql`` returned. The proxy keeps every relation method (chainable, the
results of chained calls wrapped again) and translates errors raised inside sqlml's
SQL functions back into the ``SqlmlError`` that was raised there.

Every public method of ``duckdb.DuckDBPyRelation`` gets a forwarding method on the
class when this module loads (``fetchall`` on a point query's result is the hot path:
a class attribute and a ``try`` cost a fraction of building a closure and a context
manager per call); ``__getattr__`` serves its properties and anything newer.
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
        return _forward(name).__get__(self)

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


def _forward(name: str):
    """A method calling the relation's ``name``: relations in, typed errors and relations out."""

    def method(self, *args, **kwargs):
        if args:
            args = tuple(a._relation if isinstance(a, Relation) else a for a in args)
        try:
            result = getattr(self._relation, name)(*args, **kwargs)
        except duckdb.Error as error:
            self._session.reraise(error)
        if isinstance(result, duckdb.DuckDBPyRelation):
            return Relation(result, self._session)
        return result

    method.__name__ = method.__qualname__ = name
    method.__doc__ = getattr(getattr(duckdb.DuckDBPyRelation, name, None), "__doc__", None)
    return method


for _name in dir(duckdb.DuckDBPyRelation):
    if not _name.startswith("_") and callable(getattr(duckdb.DuckDBPyRelation, _name)) and _name not in vars(Relation):
        setattr(Relation, _name, _forward(_name))
del _name
