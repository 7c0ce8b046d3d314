"""What serving needs, published as files beside the database: the serving folder.

DuckDB lets one process open a database file read-write, and while it does, no other
process can open the file at all (not even read-only). So ``sqlml serve`` never holds the
database: it reads models from this folder, which the writing process keeps current.

    <database>.serving/models/<model>/refs.json     versions (with their tokens), aliases, traffic split
    <database>.serving/models/<model>/<N>.json      the record of version N (features, classes, ...)
    <database>.serving/models/<model>/<N>.weights   its torch.save bytes (the registry's blob)
    <database>.serving/log/...                      servers' request logs (sqlml.serving.segments)

The folder is made by ``ALTER MODEL ... SET ALIAS / SET TRAFFIC`` (or by the first
``sqlml serve``); once it exists, every change to a model (a new version, an alias, a
split, a drop) is republished when its statement commits (``schedule``). Files are
written to a temporary name and renamed, so a reader sees a whole old or a whole new
file. Version files never change once written (version numbers are never reused).
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from sqlml.transaction import after_commit

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection

    from sqlml.models.registry import ModelRecord

SUFFIX = ".serving"
_lock = threading.Lock()


def folder_of(database: str) -> Path | None:
    """The serving folder of a database file (None for in-memory databases)."""
    if not database or database.startswith(":memory:"):
        return None
    return Path(os.path.abspath(database) + SUFFIX)


def database_path(duck: DuckDBPyConnection) -> str | None:
    rows = duck.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchall()
    return rows[0][0] if rows and rows[0][0] else None


def model_dir(folder: Path, name: str) -> Path:
    """A model's folder; any name is safe (everything but letters, digits, '_' and '-' is %-escaped)."""
    return folder / "models" / ("m-" + quote(name, safe="").replace(".", "%2E").replace("~", "%7E"))


def model_names(folder: Path) -> list[str]:
    base = folder / "models"
    if not base.is_dir():
        return []
    return sorted(unquote(p.name[2:]) for p in base.iterdir() if p.name.startswith("m-"))


def schedule(duck: DuckDBPyConnection, name: str) -> None:
    """Republish ``name`` once the current statement commits, if the database has a serving folder."""
    path = database_path(duck)
    folder = folder_of(path) if path else None
    if folder is None or not folder.is_dir():
        return
    after_commit(lambda: _publish_quietly(duck, folder, name))


def _publish_quietly(duck: DuckDBPyConnection, folder: Path, name: str) -> None:
    try:
        publish_model(duck, folder, name)
    except OSError as error:
        warnings.warn(f"model {name!r} changed, but its serving files in {folder} could not be written: {error}", stacklevel=2)


def publish_model(duck: DuckDBPyConnection, folder: Path, name: str, *, keep_existing_refs: bool = False) -> dict[str, Any]:
    """Write ``name``'s refs and any version files not yet written; returns the refs.

    ``keep_existing_refs`` (a reader publishing what it found, e.g. a server starting on an
    unpublished database) writes refs only when none exist, so it never overwrites what
    the writing process published after the reader's snapshot.
    """
    from sqlml.models import aliases, registry

    with _lock:
        rows = duck.execute(
            "SELECT version, created_at FROM sqlml.models WHERE name = ? ORDER BY version", [name]
        ).fetchall()
        versions = {str(int(v)): f"{name}@{int(v)}:{created.isoformat() if created else ''}" for v, created in rows}
        refs = {
            "name": name,
            "latest": int(rows[-1][0]) if rows else None,
            "versions": versions,
            "aliases": aliases.aliases(duck, name),
            "traffic": [[target, weight] for target, weight in aliases.traffic(duck, name)],
        }
        directory = model_dir(folder, name)
        directory.mkdir(parents=True, exist_ok=True)
        for version, token in versions.items():
            meta = directory / f"{version}.json"
            if meta.exists() and _read_json(meta).get("token") == token:
                continue
            record = registry.load_record(duck, name, int(version))
            _write_atomic(directory / f"{version}.weights", registry.weights_blob(duck, name, int(version)))
            _write_atomic(meta, json.dumps({"token": token, "record": registry.record_to_json(record)}).encode())
        body = json.dumps(refs, indent=1).encode()
        target = directory / "refs.json"
        if keep_existing_refs:
            _write_new(target, body)
        else:
            _write_atomic(target, body)
    return refs


def publish_all(duck: DuckDBPyConnection, folder: Path, *, keep_existing_refs: bool = False) -> list[str]:
    from sqlml.models import registry

    names = registry.model_names(duck)
    for name in names:
        publish_model(duck, folder, name, keep_existing_refs=keep_existing_refs)
    return names


# -- reading (the server) ---------------------------------------------------------------------


def read_refs(folder: Path, name: str) -> dict[str, Any] | None:
    path = model_dir(folder, name) / "refs.json"
    try:
        return _read_json(path)
    except FileNotFoundError:
        return None


def read_version(folder: Path, name: str, version: int) -> tuple[ModelRecord, bytes, str] | None:
    """(record, weights bytes, token) of a published version; None when not published."""
    from sqlml.models.registry import record_from_json

    directory = model_dir(folder, name)
    try:
        meta = _read_json(directory / f"{version}.json")
        blob = (directory / f"{version}.weights").read_bytes()
    except FileNotFoundError:
        return None
    return record_from_json(meta["record"]), blob, meta["token"]


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _write_new(path: Path, data: bytes) -> None:
    """Write ``path`` only if it does not exist (a hard link fails on an existing name)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_bytes(data)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
