"""Where the SQL files (``sql/``) and built-in UDF modules (``udfs/``) live.

In a checkout (or an editable install) they sit beside the package; an installed
wheel carries them inside the package as ``sqlml/_resources/{sql,udfs}``.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


@cache
def resource_dir(name: str) -> Path:
    """The folder ``sql`` or ``udfs``, from the wheel if installed, else from the checkout."""
    for candidate in (_PACKAGE / "_resources" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"sqlml resource folder {name!r} not found beside {_PACKAGE}; reinstall sqlml."
    )


def sql_files(subdir: str) -> list[Path]:
    """The ``.sql`` files of ``sql/<subdir>``, in name order."""
    return sorted((resource_dir("sql") / subdir).glob("*.sql"))


def migrations() -> list[tuple[int, Path]]:
    """Catalog migrations ``sql/migrations/NNNN_name.sql`` as (version, path), ascending."""
    found = []
    for path in sql_files("migrations"):
        match = re.match(r"(\d+)_", path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def install_sql_text() -> str:
    """The text of ``sql/install.sql``: every macro file, concatenated in name order."""
    header = (
        "-- sqlml pure-SQL macros for a plain DuckDB shell. Generated from sql/macros/*.sql\n"
        "-- by `make install-sql`; do not edit by hand. Idempotent: run it again at will.\n"
        "-- Needs a database file sqlml has opened once (it creates the sqlml catalog).\n"
    )
    parts = [header]
    for path in sql_files("macros"):
        parts.append(f"\n-- ===== {path.name} =====\n")
        parts.append(path.read_text().strip() + "\n")
    return "".join(parts)
