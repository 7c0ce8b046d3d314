"""The statement table: leading words -> handler, as a plain dict.

A handler is named ``"module:function"`` (or given as a callable, for plugins and tests)
and imported only when its statement runs, so ``import sqlml`` stays light. It is called
with a ``StatementContext`` and returns a relation (shown to the user) or None.
``OR REPLACE`` after ``CREATE`` is not part of the key; the handler reads it.

The query layer names no feature area: ``sqlml.wiring`` fills both tables when
``sqlml`` is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: statement key (its leading words) -> "module:function" or a callable
STATEMENTS: dict[str, str | Callable[[Any], Any]] = {}

#: Statements that only read, and so run on read-only connections too.
READ_ONLY: set[str] = set()

#: Table functions the front end computes before a statement runs: a lower-case name whose
#: call ``name(`` appears in the statement -> "module:function" taking (connection, statement)
#: and returning the statement with each call replaced by a table it filled.
MATERIALIZED_FUNCTIONS: dict[str, str | Callable[[Any, str], str]] = {}
