"""Validating a batch against a data schema: one scan, then the detectors.

The detectors first say which aggregates they need (range violations, counts in the
baseline's drift bins, custom checks, un-castable values); those join the statistics
aggregates in a single scan of the batch. Value dictionaries are counted only for string
columns a domain or a baseline comparison needs; no sketch (nor variance) of the batch is built. Then each detector reads the batch's
statistics, the schema and the baseline's statistics and reports anomalies; examples
are fetched afterwards, only for what was found.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlml.errors import InvalidOptionError
from sqlml.validation import kinds, scan, schema as schemas, sources, store
from sqlml.validation.anomalies import DETECTORS, Anomaly, Measurement, make
from sqlml.validation.schema import ColumnSchema, DataSchema
from sqlml.validation.sources import Column, Source
from sqlml.validation.statistics import DatasetStats

SERVING = "serving"
EXAMPLES = 5


@dataclass
class Run:
    """Everything one validation knows; detectors read it and add anomalies."""

    duck: Any
    source: Source
    schema: DataSchema
    environment: str | None = None
    baseline: DatasetStats | None = None
    comparison: str | None = None  # 'drift' or 'skew' when there is a baseline
    by_default: bool = False  # the baseline is the schema's own reference (no baseline was given)
    found: list = field(default_factory=list)  # anomalies of the detectors run so far
    stats: DatasetStats | None = None
    extras: dict[Any, Any] = field(default_factory=dict)
    measurements: list[Measurement] = field(default_factory=list)
    check_binding: list | None = None  # (check, bind error or None), filled by the checks detector
    distinct: dict[str, int] = field(default_factory=dict)  # exact distinct counts of key columns

    @property
    def alpha(self) -> float:
        return self.schema.significance

    def expected_columns(self) -> list[ColumnSchema]:
        return [c for c in self.schema.columns.values() if c.in_environment(self.environment)]

    def checked(self) -> list[tuple[ColumnSchema, Column]]:
        """Schema columns expected here, present in the batch with a compatible type."""
        pairs = []
        for expected in self.expected_columns():
            actual = self.source.column(expected.name)
            if actual is not None and compatible(expected.kind, actual.kind):
                pairs.append((expected, actual))
        return pairs

    def anomaly(self, anomaly_type: str, column: str | None, description: str, **fields) -> Anomaly:
        return make(anomaly_type, column, description, schema_name=self.schema.name, schema_version=self.schema.version, **fields)

    def examples(self, value: str, where: str, params: list | None = None, order: str = "frequency", limit: int = EXAMPLES) -> tuple[str, ...]:
        """A few distinct values of ``value`` among rows matching ``where`` (run only on a finding).

        ``order``: 'frequency' (most common first, shown as ``value (count)``), 'ascending'
        or 'descending' (the most extreme first).
        """
        if order == "frequency":
            sql = (
                f"SELECT CAST(v AS VARCHAR), count(*) FROM (SELECT {value} AS v FROM {self.source.sql} AS __src "
                f"WHERE {where}) GROUP BY v ORDER BY count(*) DESC, v LIMIT {int(limit)}"
            )
            return tuple(f"{v} ({n:,})" for v, n in self.duck.execute(sql, params or None).fetchall())
        direction = "ASC" if order == "ascending" else "DESC"
        sql = (
            f"SELECT CAST(v AS VARCHAR) FROM (SELECT {value} AS v FROM {self.source.sql} AS __src WHERE {where}) "
            f"ORDER BY v {direction} LIMIT {int(limit) * 20}"
        )
        return tuple(dict.fromkeys(r[0] for r in self.duck.execute(sql, params or None).fetchall()))[:limit]


def compatible(expected_kind: str, actual_kind: str) -> bool:
    """Integers satisfy a float column; otherwise the kinds must agree."""
    return expected_kind == actual_kind or (expected_kind == kinds.FLOAT and actual_kind == kinds.INTEGER)


def validate(
    duck,
    source_text: str,
    schema: DataSchema | str,
    *,
    baseline: str | DatasetStats | None = None,
    environment: str | None = None,
    version: int | None = None,
    full_statistics: bool = False,
) -> Run:
    """Scan ``source_text`` for validation against a schema; ``anomalies(run)`` then reports.

    ``full_statistics`` computes every statistic (sketches and all string values), as
    ACCEPT and stored runs need; otherwise only what the detectors read.
    """
    if isinstance(schema, str):
        schema = schemas.load(duck, schema, version)
    environment = _environment(environment)
    source = sources.resolve(duck, source_text)
    comparison, base = resolve_baseline(duck, schema, baseline, environment)
    run = Run(duck=duck, source=source, schema=schema, environment=environment, baseline=base, comparison=comparison,
              by_default=baseline is None and base is not None and base is schema.reference)
    extras = [extra for detector in DETECTORS for extra in detector.plan(run)]
    stats, run.extras = scan.compute(
        duck, source, extras,
        sketches=full_statistics,
        values_for=None if full_statistics else _value_columns(run),
    )
    run.stats = stats
    unique = [a.name for e, a in run.checked() if e.is_unique]
    run.distinct = scan.distinct_counts(duck, source, unique, scan.integer_ranges(stats.columns[n] for n in unique))
    return run


def anomalies(run: Run) -> list[Anomaly]:
    run.found = []
    for detector in DETECTORS:
        run.found.extend(detector.detect(run))
    return list(run.found)


def _environment(environment: str | None) -> str | None:
    if environment is None:
        return None
    if not isinstance(environment, str) or not environment.strip():
        raise InvalidOptionError("ml_validate", "environment", f"expected a name such as 'training' or 'serving', got {environment!r}")
    return environment.strip().lower()


def resolve_baseline(duck, schema: DataSchema, baseline, environment: str | None) -> tuple[str | None, DatasetStats | None]:
    """The baseline's statistics: stored ones when the name has some, else a scan.

    Without a baseline, the schema's own reference (the data it was inferred from and
    accepted): drift by default, or training/serving skew in the serving environment.
    Schemas written before references compare with nothing, except in serving, with the
    statistics they were inferred from.
    """
    comparison = "skew" if environment == SERVING else "drift"
    if isinstance(baseline, DatasetStats):
        return comparison, baseline
    if baseline is None:
        if schema.reference is not None:
            return comparison, schema.reference
        if environment == SERVING and schema.stats_id is not None:
            return comparison, store.load(duck, schema.stats_id)
        return None, None
    stored = store.load_dataset(duck, baseline) or store.load_dataset(duck, sources.dataset_key(baseline))
    if stored is not None:
        return comparison, stored
    stats, _ = scan.compute(duck, sources.resolve(duck, baseline, argument="baseline"))
    return comparison, stats


def _value_columns(run: Run) -> set[str]:
    """String columns whose value counts a detector needs (domains, categorical drift)."""
    names = set()
    for expected, actual in run.checked():
        if actual.kind != kinds.STRING:
            continue
        if expected.domain is not None or run.baseline is not None:
            names.add(actual.name)
    return names
