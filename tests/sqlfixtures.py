"""The one reader of golden SQL fixture files (``tests/optimizer/fixtures``, ``tests/statements``).

A file holds cases. Each case is optional ``# key: value`` header lines, then a fixed
number of SQL statements, each ending with ``;`` at the end of a line. A key may appear
more than once (``# setup:``): ``options`` keeps its last value, ``values(key)`` all of
them in order. What the keys and statements mean is up to the runner of each folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Case:
    file: str  # the fixture file's stem: the rule or the statement it exercises
    title: str
    statements: list[str]
    headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.file}: {self.title}"

    @property
    def options(self) -> dict[str, str]:
        return dict(self.headers)

    def values(self, key: str) -> list[str]:
        return [value for k, value in self.headers if k == key]


def load_cases(folder: Path, statements_per_case: int = 2) -> list[Case]:
    cases = []
    for path in sorted(Path(folder).glob("*.sql")):
        headers: list[tuple[str, str]] = []
        statements: list[str] = []
        lines: list[str] = []
        for line in path.read_text().splitlines():
            if line.startswith("#") and not lines:
                key, _, value = line[1:].partition(":")
                headers.append((key.strip(), value.strip()))
                continue
            if not line.strip() and not lines:
                continue
            lines.append(line)
            if line.rstrip().endswith(";"):
                statements.append("\n".join(lines).rstrip()[:-1])
                lines = []
                if len(statements) == statements_per_case:
                    title = dict(headers).get("title", f"case {len(cases) + 1}")
                    rest = [(k, v) for k, v in headers if k != "title"]
                    cases.append(Case(path.stem, title, statements, rest))
                    headers, statements = [], []
        assert not statements and not lines, f"{path.name}: unpaired statement at the end"
        assert not headers, f"{path.name}: header lines after the last case"
    return cases
