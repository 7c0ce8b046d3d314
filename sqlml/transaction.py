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
    if in_transaction(duck):
        # The user opened a transaction; their COMMIT or ROLLBACK decides.
        yield
        return
    duck.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        try:
            duck.execute("ROLLBACK")
        except duckdb.Error:
            pass
        raise
    duck.execute("COMMIT")


def in_transaction(duck: duckdb.DuckDBPyConnection) -> bool:
    """Whether an explicit transaction is open: in autocommit every statement gets a new id.

    (Trying ``BEGIN`` to find out would abort the user's open transaction.)
    """
    probe = "SELECT current_transaction_id()"
    return duck.execute(probe).fetchall() == duck.execute(probe).fetchall()
