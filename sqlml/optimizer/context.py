"""What optimizer rules share while rewriting one statement."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Step:
    """Work that runs before the rewritten statement (filling the prediction cache).

    The rewritten statement is correct without it, only slower: every cache lookup
    falls back to calling the model. ``run(connection)`` does the work and returns a
    short report; ``sql`` is what ``EXPLAIN ML`` shows.
    """

    rule: str
    description: str
    sql: str
    run: Any  # Callable[[connection], dict]
    fill: Any = None  # the sqlml.optimizer.runtime.cache_store.Fill a cache step runs (multi-query optimization merges them)


@dataclass
class RewriteContext:
    connection: Any = None  # sqlml.Connection, for rules that look at the catalog
    fired: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    #: where cached predictions live ("sqlml.prediction_cache", a TEMP table, or None)
    store: str | None = None
    #: rule names switched off for this rewrite
    disabled: frozenset[str] = frozenset()
    counter: int = 0
    #: relations the rewritten statement reads that exist only once its steps ran:
    #: name -> an empty Arrow table of the same schema, registered to check binding
    placeholders: dict[str, Any] = field(default_factory=dict)

    def fire(self, rule: str) -> None:
        if rule not in self.fired:
            self.fired.append(rule)

    def fresh(self) -> int:
        """A new number for invented names (``__ml_pred_N``), unique in the statement."""
        self.counter += 1
        return self.counter

    def note(self, key: str, value: Any) -> None:
        self.notes.setdefault(key, []).append(value)
