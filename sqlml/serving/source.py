"""Where a server gets its models: the serving folder beside the database, never the database.

``ModelSource(database, reference)`` reads the published refs of the model
(``sqlml.models.published``) and says which versions to serve with what share of the
requests (``targets()``), following what the reference means:

    'm@3'            version 3, always
    'm@production'   the version the alias names now (followed as the alias moves)
    'm@latest'       the newest version (followed)
    'm'              the model's traffic split when it has one, else its newest version

When the model (or a version) is not published yet (a database from before serving
folders, or a version trained before the folder existed), the source opens the database
read-only for a moment and publishes it; a database held by another process is retried
with backoff for ``open_timeout`` seconds, then refused with a message saying what to do.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass

from sqlml.errors import ServingError, UnknownObjectError
from sqlml.models import published
from sqlml.models.registry import parse_reference


@dataclass(frozen=True)
class Target:
    label: str  # what chose it: 'production', 'latest', '3'
    version: int
    weight: float


class DatabaseBusy(ServingError):
    """The database is held by another process and what serving needs is not published."""


class ModelSource:
    def __init__(self, database: str, reference: str, *, open_timeout: float = 30.0, connection=None):
        folder = published.folder_of(database)
        if folder is None:
            raise ServingError("sqlml serve needs a database file (an in-memory database has no models to serve)")
        self.database = database
        self.folder = folder
        self.reference = reference
        self.open_timeout = open_timeout
        self.connection = connection  # a process that already holds the database passes it
        self.model, self.pinned, self.alias = reference, None, None
        if published.read_refs(folder, reference) is None:  # not a model literally named 'm@3'
            self.model, self.pinned, self.alias = parse_reference(reference)
        if published.read_refs(folder, self.model) is None:
            self.publish()
        self.refs()  # the model must exist

    @property
    def follows(self) -> bool:
        """Whether the versions served can change while the server runs."""
        return self.pinned is None

    def refs(self) -> dict:
        refs = published.read_refs(self.folder, self.model)
        if refs is None or not refs.get("versions"):
            known = published.model_names(self.folder)
            raise UnknownObjectError("model", self.model, known, f"No model of that name is published in {self.folder}.")
        return refs

    def targets(self) -> list[Target]:
        """The versions to serve now and their shares (weights sum to 1)."""
        refs = self.refs()
        versions = {int(v) for v in refs["versions"]}
        if self.pinned is not None:
            chosen = [Target(str(self.pinned), self.pinned, 1.0)]
        elif self.alias is not None and self.alias != "latest":
            if self.alias not in refs["aliases"]:
                raise UnknownObjectError(
                    "model alias", f"{self.model}@{self.alias}", [f"{self.model}@{a}" for a in refs["aliases"]],
                    f"Set it with ALTER MODEL {self.model} SET ALIAS {self.alias} = <version>.",
                )
            chosen = [Target(self.alias, int(refs["aliases"][self.alias]), 1.0)]
        elif self.alias is None and refs.get("traffic"):
            total = sum(w for _, w in refs["traffic"])
            chosen = [
                Target(target, int(target) if target.isdigit() else int(refs["aliases"].get(target, -1)), weight / total)
                for target, weight in refs["traffic"]
            ]
        else:
            chosen = [Target("latest", int(refs["latest"]), 1.0)]
        for target in chosen:
            if target.version not in versions:
                raise UnknownObjectError(
                    "model version", f"{self.model}@{target.version}", [],
                    f"Model {self.model!r} has versions {sorted(versions)}.",
                )
        return chosen

    def load(self, version: int):
        """(record, state dict, token) of a version, publishing it first when it is missing."""
        from sqlml.models.registry import weights_from_bytes

        found = published.read_version(self.folder, self.model, version)
        if found is None:
            self.publish()
            found = published.read_version(self.folder, self.model, version)
        if found is None:
            raise UnknownObjectError("model version", f"{self.model}@{version}", [])
        record, blob, token = found
        return record, weights_from_bytes(blob), token

    def publish(self) -> None:
        """Publish the model from the database itself (read-only, retried while it is held)."""
        if self.connection is not None:
            with self.connection.session.cursor() as cur:
                _publish_from(cur, self.folder, self.model)
            return
        if not os.path.exists(self.database):
            raise ServingError(f"database {self.database!r} does not exist; give the path of the database holding the model")
        import duckdb

        delay, deadline, last = 0.05, time.monotonic() + self.open_timeout, None
        while True:
            try:
                duck = duckdb.connect(self.database, read_only=True)
            except duckdb.IOException as error:
                last = error
                if time.monotonic() + delay > deadline:
                    break
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            try:
                _publish_from(duck, self.folder, self.model)
            finally:
                duck.close()
            return
        holder = re.search(r"PID (\d+)", str(last))
        raise DatabaseBusy(
            f"model {self.model!r} is not published beside {self.database!r} yet, and the database is held by "
            f"another process{' (pid ' + holder.group(1) + ')' if holder else ''} for over {self.open_timeout:g}s. "
            f"Publish it from that process (ALTER MODEL {self.model} SET ALIAS production = <version> does), "
            f"or close it there, and start again."
        )


def _publish_from(duck, folder, name: str) -> None:
    from sqlml.models.registry import latest_version

    if not _has_registry(duck) or latest_version(duck, name) is None:
        known = [r[0] for r in duck.execute("SELECT DISTINCT name FROM sqlml.models").fetchall()] if _has_registry(duck) else []
        raise UnknownObjectError("model", name, known, "See SELECT * FROM ml_models().")
    folder.mkdir(exist_ok=True)
    published.publish_model(duck, folder, name, keep_existing_refs=True)


def _has_registry(duck) -> bool:
    rows = duck.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'sqlml' AND table_name = 'models'"
    ).fetchall()
    return bool(rows[0][0])
