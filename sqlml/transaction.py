"""One sqlml statement, one transaction: all of it lands, or none of it does."""

from __future__ import annotations

from contextlib import contextmanager

import duckdb


@contextmanager
def transaction(duck: duckdb.DuckDBPyConnection):
    """Run the body in a transaction of its own; inside a user's open transaction, join it.

    On any error the transaction is rolled back and the error re-raised, so a failed
    statement leaves no half-written catalog rows, tables or model weights behind.
    """
    try:
        duck.execute("BEGIN TRANSACTION")
    except duckdb.TransactionException:
        # The user opened a transaction; their COMMIT or ROLLBACK decides.
        yield
        return
    try:
        yield
    except BaseException:
        try:
            duck.execute("ROLLBACK")
        except duckdb.Error:
            pass
        raise
    duck.execute("COMMIT")
