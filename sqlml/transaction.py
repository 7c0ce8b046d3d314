"""One sqlml statement, one transaction: all of it lands, or none of it does."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import contextmanager

import duckdb

#: callbacks to run after the innermost transaction() of this thread commits
_pending = threading.local()


@contextmanager
def transaction(duck: duckdb.DuckDBPyConnection):
    """Run the body in a transaction of its own; inside a user's open transaction, join it.

    On any error the transaction is rolled back and the error re-raised, so a failed
    statement leaves no half-written catalog rows, tables or model weights behind.
    """
    if in_transaction(duck):
        # The user opened a transaction; their COMMIT or ROLLBACK decides.
        yield
        return
    stack = _stack()
    stack.append([])
    duck.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        stack.pop()
        try:
            duck.execute("ROLLBACK")
        except duckdb.Error:
            pass
        raise
    callbacks = stack.pop()
    duck.execute("COMMIT")
    for callback in callbacks:
        callback()


def after_commit(callback: Callable[[], None]) -> None:
    """Run ``callback`` once the statement's transaction has committed (never on rollback).

    Outside a transaction() of this thread (autocommit, or a user's own open transaction
    that a statement joined) it runs at once: the caller has nothing to wait for, or no
    way to see the user's COMMIT.
    """
    stack = _stack()
    if stack:
        stack[-1].append(callback)
    else:
        callback()


def _stack() -> list[list[Callable[[], None]]]:
    if not hasattr(_pending, "stack"):
        _pending.stack = []
    return _pending.stack


def in_transaction(duck: duckdb.DuckDBPyConnection) -> bool:
    """Whether an explicit transaction is open: in autocommit every statement gets a new id.

    (Trying ``BEGIN`` to find out would abort the user's open transaction.)
    """
    probe = "SELECT current_transaction_id()"
    return duck.execute(probe).fetchall() == duck.execute(probe).fetchall()
