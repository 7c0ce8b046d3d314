"""The ``sqlml`` schema: created on first connect, migrated forward, and its object directory.

Migrations are the files ``sql/migrations/NNNN_name.sql``; ``sqlml.meta`` holds the
version reached. Read-only connections never touch the catalog.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import duckdb

from sqlml import resources
from sqlml.errors import ObjectExistsError, UnknownObjectError
from sqlml.sqlutil import fetch_one, fetch_value
from sqlml.transaction import transaction


def latest_version() -> int:
    found = resources.migrations()
    return found[-1][0] if found else 0


def catalog_version(duck: duckdb.DuckDBPyConnection) -> int:
    """The catalog version of this database; 0 when it has no sqlml catalog."""
    exists = fetch_value(
        duck, "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'sqlml' AND table_name = 'meta'"
    )
    if not exists:
        return 0
    value = fetch_value(duck, "SELECT max(value) FROM sqlml.meta WHERE key = 'catalog_version'")
    return int(value) if value is not None else 0


def migrate(duck: duckdb.DuckDBPyConnection, *, up_to: int | None = None) -> int:
    """Apply the migrations above the current version (all in one transaction)."""
    current = catalog_version(duck)
    pending = [(v, p) for v, p in resources.migrations() if v > current and (up_to is None or v <= up_to)]
    if not pending:
        return current
    with transaction(duck):
        for version, path in pending:
            duck.execute(path.read_text())
            current = version
        duck.execute("DELETE FROM sqlml.meta WHERE key = 'catalog_version'")
        duck.execute("INSERT INTO sqlml.meta VALUES ('catalog_version', ?)", [str(current)])
    return current


# -- the object directory -------------------------------------------------------------


def get_object(duck, kind: str, name: str) -> dict[str, Any] | None:
    row = fetch_one(
        duck,
        "SELECT name, created_at, updated_at, properties FROM sqlml.objects WHERE kind = ? AND name = ?",
        [kind, name],
    )
    if row is None:
        return None
    return {
        "kind": kind,
        "name": row[0],
        "created_at": row[1],
        "updated_at": row[2],
        "properties": json.loads(row[3]) if row[3] else {},
    }


def object_names(duck, kind: str | None = None) -> list[str]:
    if kind is None:
        rows = duck.execute("SELECT name FROM sqlml.objects ORDER BY name").fetchall()
    else:
        rows = duck.execute("SELECT name FROM sqlml.objects WHERE kind = ? ORDER BY name", [kind]).fetchall()
    return [r[0] for r in rows]


def require_object(duck, kind: str, name: str, hint: str = "") -> dict[str, Any]:
    """The object, or ``UnknownObjectError`` suggesting the near names of that kind."""
    found = get_object(duck, kind, name)
    if found is None:
        raise UnknownObjectError(kind, name, object_names(duck, kind), hint)
    return found


#: longest object name (a name is also a table name, a file name part, a log field)
MAX_NAME_LENGTH = 255


def check_name(kind: str, name: str) -> None:
    """Refuse names no object should have: empty, too long, or with control characters (NUL, newline)."""
    from sqlml.errors import InvalidOptionError

    where = f"CREATE {kind.upper()}"
    if not isinstance(name, str) or not name.strip():
        raise InvalidOptionError(where, "name", f"a {kind} needs a non-empty name, got {name!r}")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidOptionError(where, "name", f"{len(name)} characters; a name has at most {MAX_NAME_LENGTH}")
    bad = next((c for c in name if ord(c) < 32 or ord(c) == 127), None)
    if bad is not None:
        raise InvalidOptionError(where, "name", f"{name!r} contains the control character {bad!r}; use printable characters")


def require_new(duck, kind: str, name: str, *, replace: bool = False, exists: bool | None = None) -> None:
    """Before creating object ``name``: the name is well-formed and free (``ObjectExistsError``).

    Also claims the name for the statement's transaction, so that losing a race with
    another cursor creating the same name reads as ``ObjectExistsError`` too.
    ``exists`` overrides the directory lookup (models ask their own table). With
    ``replace`` (OR REPLACE) only the name's form is checked.
    """
    from sqlml.transaction import claim

    check_name(kind, name)
    if replace:
        return
    if exists is None:
        exists = get_object(duck, kind, name) is not None
    if exists:
        raise ObjectExistsError(kind, name)
    claim(kind, name)


def put_object(duck, kind: str, name: str, properties: dict[str, Any] | None = None, *, replace: bool = False) -> None:
    """Create (or with ``replace``, overwrite) the directory row of an object.

    The directory has one row per (kind, name) (a unique index): of two cursors creating
    one name at once, the second to commit fails, and an update of the row conflicts
    with any concurrent one, so each object changes in one statement at a time.
    """
    existing = get_object(duck, kind, name)
    if existing is not None and not replace:
        raise ObjectExistsError(kind, name)
    if existing is None:
        check_name(kind, name)
    payload = json.dumps(properties or {}, default=_json_default)
    if existing is not None:
        duck.execute(
            "UPDATE sqlml.objects SET properties = ?, updated_at = current_timestamp WHERE kind = ? AND name = ?",
            [payload, kind, name],
        )
    else:
        duck.execute("INSERT INTO sqlml.objects (kind, name, properties) VALUES (?, ?, ?)", [kind, name, payload])


def delete_object(duck, kind: str, name: str, *, missing_ok: bool = False) -> bool:
    if get_object(duck, kind, name) is None:
        if missing_ok:
            return False
        raise UnknownObjectError(kind, name, object_names(duck, kind))
    duck.execute("DELETE FROM sqlml.objects WHERE kind = ? AND name = ?", [kind, name])
    return True


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in the catalog")
