"""One sqlml statement, one transaction: all of it lands, or none of it does."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from contextlib import contextmanager
from contextvars import ContextVar

import duckdb

#: DuckDB's words for a write that lost to a concurrent transaction: a unique key another
#: transaction committed first, or a row (a directory entry, a table) it changed first.
_CONFLICT = re.compile(r"duplicate key|conflict on|write-write conflict", re.IGNORECASE)

#: The running statement's connection and the (database, kind, name) keys it claimed.
_CLAIMS: ContextVar[tuple | None] = ContextVar("sqlml_claims", default=None)
#: Names being created right now by statements of this process (all cursors share a
#: database's process: DuckDB lets one process own a file): key -> the claiming statement.
_CREATING: dict[tuple, object] = {}
_CREATING_LOCK = threading.Lock()
#: Callbacks to run once the running statement's transaction has committed.
_AFTER: ContextVar[list | None] = ContextVar("sqlml_after_commit", default=None)


@contextmanager
def transaction(duck: duckdb.DuckDBPyConnection):
    """Run the body in a transaction of its own; inside a user's open transaction, join it.

    On any error the transaction is rolled back and the error re-raised, so a failed
    statement leaves no half-written catalog rows, tables or model weights behind. A
    write that conflicts with another cursor's concurrent statement (the same name
    created twice, the same object changed twice) becomes ``ObjectExistsError`` or
    ``ConflictError``.
    """
    if in_transaction(duck):
        # The user opened a transaction; their COMMIT or ROLLBACK decides.
        yield
        return
    held: list = []
    claims = _CLAIMS.set((duck, held))
    callbacks: list[Callable[[], None]] = []
    after = _AFTER.set(callbacks)
    duck.execute("BEGIN TRANSACTION")
    try:
        try:
            yield
        except duckdb.Error as error:
            rollback(duck, error)
            translated = conflict_error(duck, error)
            if translated is None:
                raise
            raise translated from None
        except BaseException as error:
            rollback(duck, error)
            raise
        try:
            duck.execute("COMMIT")
        except duckdb.Error as error:
            rollback(duck, error)
            raise (conflict_error(duck, error) or error) from None
    finally:
        _release(held)
        _CLAIMS.reset(claims)
        _AFTER.reset(after)
    for callback in callbacks:
        callback()


def after_commit(callback: Callable[[], None]) -> None:
    """Run ``callback`` once the running statement's transaction has committed (never on rollback).

    Outside a transaction() (autocommit, or a user's own open transaction that a statement
    joined) it runs at once: the caller has nothing to wait for, or no way to see the
    user's COMMIT.
    """
    pending = _AFTER.get()
    if pending is None:
        callback()
    else:
        pending.append(callback)


def claim(kind: str, name: str) -> None:
    """The running statement creates object ``name``: no other statement may at the same time.

    A second statement of this process claiming the same name while the first runs gets
    ``ObjectExistsError`` at once (rather than after training a model for nothing). Across
    processes, and inside a user's own transaction, the catalog's unique index decides at
    COMMIT. The claim ends with the statement's transaction.
    """
    from sqlml.errors import ObjectExistsError
    from sqlml.sqlutil import fetch_value

    state = _CLAIMS.get()
    if state is None:
        return
    duck, held = state
    database = fetch_value(
        duck,
        "SELECT coalesce((SELECT path FROM duckdb_databases() WHERE database_name = current_database()), '') || '|' || "
        "coalesce((SELECT max(value) FROM sqlml.meta WHERE key = 'instance'), '')",
    )
    key = (database, kind, name)
    with _CREATING_LOCK:
        owner = _CREATING.get(key)
        if owner is not None and owner is not held:
            raise ObjectExistsError(kind, name, in_progress=True)
        _CREATING[key] = held
    held.append(key)


def _release(held: list) -> None:
    with _CREATING_LOCK:
        for key in held:
            if _CREATING.get(key) is held:
                del _CREATING[key]


def conflict_error(duck: duckdb.DuckDBPyConnection, error: BaseException):
    """The sqlml error for a DuckDB error caused by a concurrent write, or None.

    ``ObjectExistsError`` when a name this statement was creating now exists (another
    cursor created it first), else ``ConflictError``. Call after the rollback.
    """
    from sqlml.errors import ConflictError, ObjectExistsError
    from sqlml.sqlutil import fetch_value

    if not isinstance(error, (duckdb.TransactionException, duckdb.ConstraintException)):
        return None
    if not _CONFLICT.search(str(error)):
        return None
    state = _CLAIMS.get()
    reader = duck.cursor()  # autocommit: sees what the winner committed
    try:
        for _, kind, name in state[1] if state else ():
            # the object directory (sqlml.catalog's table), read directly: catalog imports this module
            if fetch_value(reader, "SELECT count(*) FROM sqlml.objects WHERE kind = ? AND name = ?", [kind, name]):
                return ObjectExistsError(kind, name)
    finally:
        reader.close()
    return ConflictError()


def rollback(duck: duckdb.DuckDBPyConnection, error: BaseException) -> None:
    """Roll back, even when the failed body left a half-read result open on ``duck``.

    DuckDB refuses any statement (ROLLBACK included) while a streaming result is open,
    and an exception raised mid-stream keeps the reader alive in its traceback's frames.
    Left alone, the transaction would stay open and swallow the connection's next
    statements. Clearing those (finished) frames releases the reader.
    """
    try:
        duck.execute("ROLLBACK")
        return
    except duckdb.ResourceInUseException:
        pass
    except duckdb.Error:
        return  # nothing to roll back (a failed COMMIT already did)
    import gc
    import traceback

    traceback.clear_frames(error.__traceback__)
    gc.collect()
    try:
        duck.execute("ROLLBACK")
    except duckdb.Error:
        pass


def in_transaction(duck: duckdb.DuckDBPyConnection) -> bool:
    """Whether an explicit transaction is open: in autocommit every statement gets a new id.

    (Trying ``BEGIN`` to find out would abort the user's open transaction.)
    """
    probe = "SELECT current_transaction_id()"
    return duck.execute(probe).fetchall() == duck.execute(probe).fetchall()
