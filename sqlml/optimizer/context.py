"""What optimizer rules share while rewriting one statement."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class RewriteContext:
    connection: Any = None  # sqlml.Connection, for rules that look at the catalog
    fired: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    def fire(self, rule: str) -> None:
        if rule not in self.fired:
            self.fired.append(rule)
