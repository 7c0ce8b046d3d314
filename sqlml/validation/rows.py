"""Appending many catalog rows in one statement.

Each column travels as one typed list parameter and ``unnest`` zips them back into rows:
one round trip instead of ``executemany``'s one per row (300 schema columns: 3 s -> 10 ms),
and no Arrow conversion (whose first use imports pandas, half a second).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def insert_rows(duck, table: str, types: Mapping[str, str], rows: Sequence[Sequence]) -> None:
    """Append ``rows`` (tuples in the order of ``types``) to ``table`` (a trusted catalog name)."""
    if not rows:
        return
    columns = list(types)
    names = ", ".join(f'"{c}"' for c in columns)
    unnests = ", ".join(f'unnest(?::{types[c]}[]) AS "{c}"' for c in columns)
    params = [[r[i] for r in rows] for i in range(len(columns))]
    duck.execute(f"INSERT INTO {table} ({names}) SELECT {unnests}", params)
