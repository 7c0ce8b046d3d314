"""Aliases and traffic splits of models: names for versions, and how requests divide.

    set_alias(duck, model, alias, version)   ALTER MODEL m SET ALIAS production = 3
    drop_alias(duck, model, alias)           ALTER MODEL m DROP ALIAS production
    aliases(duck, model) -> {alias: version}
    set_traffic(duck, model, [(target, weight), ...])   ALTER MODEL m SET TRAFFIC production = 90, candidate = 10
    traffic(duck, model) -> [(target, weight), ...]      (empty: no split)
    resolve_target(model, target, aliases, latest) -> version

An alias is a word (``[A-Za-z_][A-Za-z0-9_]*``); ``latest`` is built in (the newest
version) and cannot be set. ``'m@production'`` is read wherever ``'m@3'`` is
(``registry.split_reference``). Changes bump the registry's generation, so loaded-model
caches of this process look the reference up again.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import duckdb

from sqlml.errors import DataError, UnknownObjectError
from sqlml.models import registry

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection

ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
BUILT_IN = "latest"
MAX_TRAFFIC_TARGETS = 16


def check_alias(alias: str) -> str:
    if not isinstance(alias, str) or not ALIAS.match(alias):
        raise DataError(f"alias {alias!r} must be a word of letters, digits and '_' that does not start with a digit")
    return alias


def aliases(duck: DuckDBPyConnection, model: str) -> dict[str, int]:
    """{alias: version} of ``model`` (empty on catalogs older than aliases)."""
    try:
        rows = duck.execute("SELECT alias, version FROM sqlml.model_aliases WHERE name = ? ORDER BY alias", [model]).fetchall()
    except duckdb.CatalogException:
        return {}
    return {alias: int(version) for alias, version in rows}


def alias_version(duck: DuckDBPyConnection, model: str, alias: str) -> int:
    """The version ``model@alias`` names; ``UnknownObjectError`` listing the aliases there are."""
    if alias == BUILT_IN:
        latest = registry.latest_version(duck, model)
        if latest is None:
            registry.load_record(duck, model)  # raises with near names
        assert latest is not None
        return latest
    found = aliases(duck, model)
    if alias not in found:
        if registry.latest_version(duck, model) is None:
            registry.load_record(duck, model)
        raise UnknownObjectError(
            "model alias", f"{model}@{alias}", [f"{model}@{a}" for a in found],
            f"Set one with ALTER MODEL {model} SET ALIAS {alias} = <version>; {model}@latest is the newest version.",
        )
    return found[alias]


def set_alias(duck: DuckDBPyConnection, model: str, alias: str, version: int) -> None:
    check_alias(alias)
    if alias == BUILT_IN:
        raise DataError(f"{model}@latest always names the newest version; choose another alias name")
    registry.load_record(duck, model, version)  # the version must exist
    duck.execute("DELETE FROM sqlml.model_aliases WHERE name = ? AND alias = ?", [model, alias])
    duck.execute("INSERT INTO sqlml.model_aliases (name, alias, version) VALUES (?, ?, ?)", [model, alias, version])
    registry.changed(duck, model)


def drop_alias(duck: DuckDBPyConnection, model: str, alias: str, *, missing_ok: bool = False) -> None:
    found = aliases(duck, model)
    if alias not in found:
        if missing_ok:
            return
        alias_version(duck, model, alias)  # raises with the aliases there are
    used = [target for target, _ in traffic(duck, model) if target == alias]
    if used:
        raise DataError(
            f"alias {alias!r} of model {model!r} is in its traffic split; change the split first "
            f"(ALTER MODEL {model} SET TRAFFIC ... or DROP TRAFFIC)"
        )
    duck.execute("DELETE FROM sqlml.model_aliases WHERE name = ? AND alias = ?", [model, alias])
    registry.changed(duck, model)


def traffic(duck: DuckDBPyConnection, model: str) -> list[tuple[str, float]]:
    try:
        rows = duck.execute("SELECT target, weight FROM sqlml.model_traffic WHERE name = ? ORDER BY position", [model]).fetchall()
    except duckdb.CatalogException:
        return []
    return [(target, float(weight)) for target, weight in rows]


def set_traffic(duck: DuckDBPyConnection, model: str, split: list[tuple[str, float]]) -> None:
    """Replace ``model``'s split; targets are aliases (or version numbers), weights relative and positive."""
    if not split:
        raise DataError("a traffic split needs at least one target")
    if len(split) > MAX_TRAFFIC_TARGETS:
        raise DataError(f"a traffic split has at most {MAX_TRAFFIC_TARGETS} targets, got {len(split)}")
    seen: set[str] = set()
    found = aliases(duck, model)
    latest = registry.latest_version(duck, model)
    if latest is None:
        registry.load_record(duck, model)
    for target, weight in split:
        if target in seen:
            raise DataError(f"traffic target {target!r} appears twice")
        seen.add(target)
        if not (isinstance(weight, (int, float)) and 0 < weight <= 1e6) or isinstance(weight, bool):
            raise DataError(f"traffic weight of {target!r} must be a number in (0, 1000000], got {weight!r}")
        if target.isdigit():
            registry.load_record(duck, model, int(target))
        else:
            resolve_target(model, target, found, latest)
    duck.execute("DELETE FROM sqlml.model_traffic WHERE name = ?", [model])
    duck.executemany(
        "INSERT INTO sqlml.model_traffic (name, position, target, weight) VALUES (?, ?, ?, ?)",
        [[model, i, target, float(weight)] for i, (target, weight) in enumerate(split)],
    )
    registry.changed(duck, model)


def drop_traffic(duck: DuckDBPyConnection, model: str) -> None:
    duck.execute("DELETE FROM sqlml.model_traffic WHERE name = ?", [model])
    registry.changed(duck, model)


def resolve_target(model: str, target: str, found: dict[str, int], latest: int | None) -> int:
    """The version a split target names, from already-read aliases (no database needed)."""
    if target.isdigit():
        return int(target)
    if target == BUILT_IN and latest is not None:
        return latest
    if target not in found:
        raise UnknownObjectError(
            "model alias", f"{model}@{target}", [f"{model}@{a}" for a in found],
            f"Set it first: ALTER MODEL {model} SET ALIAS {target} = <version>.",
        )
    return found[target]


def drop_model_rows(duck: DuckDBPyConnection, model: str, version: int | None) -> None:
    """Dropping a whole model drops its aliases and split; a version that an alias or the split names is refused."""
    try:
        if version is None:
            duck.execute("DELETE FROM sqlml.model_aliases WHERE name = ?", [model])
            duck.execute("DELETE FROM sqlml.model_traffic WHERE name = ?", [model])
            return
        pointing = sorted(a for a, v in aliases(duck, model).items() if v == version)
        split = [t for t, _ in traffic(duck, model) if t == str(version)]
    except duckdb.CatalogException:
        return
    if pointing or split:
        what = f"alias {', '.join(pointing)}" if pointing else "its traffic split"
        raise DataError(
            f"version {version} of model {model!r} is still in use by {what}; point the alias elsewhere first "
            f"(ALTER MODEL {model} SET ALIAS {pointing[0] if pointing else 'name'} = <version>) or drop it"
        )
