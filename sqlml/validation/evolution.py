"""A data schema's life: inferred once, then evolved version by version, each with a reason.

``accept`` is TFDV's "fix the data or update the schema" loop done in the database:
validate the batch, and for every anomaly the schema can absorb write the smallest
relaxation (domains grow, bounds widen, presence relaxes, new columns join, a changed
type is adopted) into the next version, naming each change in its reason. Anomalies a
schema cannot absorb (custom checks) stay, and the reason says so. The accepted batch
becomes the version's drift reference: drift is then measured since the data last
accepted, as TFDV's drift comparator measures it since the previous span (a union of
the old data and the batch would leave the batch itself drifting from it).
"""

from __future__ import annotations

import math
from dataclasses import replace

from sqlml import catalog
from sqlml.errors import InvalidOptionError, ObjectExistsError, UnknownObjectError
from sqlml.validation import checks as custom, inference, reference as references, scan, schema as schemas, sources, store
from sqlml.validation.schema import DataSchema
from sqlml.validation.significance import wilson_bounds
from sqlml.validation.statistics import DatasetStats
from sqlml.validation.validate import anomalies, validate


def create(duck, name: str, source_text: str, options: dict | None = None, *, replace_existing: bool = False) -> DataSchema:
    """Infer and store a schema from ``source_text``; its statistics are stored too."""
    opts = inference.check_options(options or {})
    previous = schemas.current_version(duck, name) if schemas.exists(duck, name) else None
    catalog.require_new(duck, schemas.KIND, name, replace=replace_existing, exists=previous is not None)
    source = sources.resolve(duck, source_text)
    stats = training_statistics(duck, source)
    store.save(duck, stats, dataset=opts["dataset"] or sources.dataset_key(source_text), span=opts["span"])
    schema = inference.infer(stats, name, opts)
    schema.source = source.label
    if previous is None:
        schema.reason = f"inferred from {source.label} ({stats.row_count:,} rows)"
    else:
        schema.version = schemas.last_version(duck, name) + 1
        schema.parent_version = previous
        schema.reason = f"re-inferred from {source.label} ({stats.row_count:,} rows) by CREATE OR REPLACE"
    schemas.save(duck, schema)
    return schema


def training_statistics(duck, source) -> DatasetStats:
    """Full statistics, with exact distinct counts where uniqueness is at stake."""
    stats, _ = scan.compute(duck, source)
    scan.exact_distinct(duck, source, inference.key_candidates(stats))
    return stats


def accept(duck, name: str, source_text: str, why: str | None = None) -> tuple[DataSchema | None, list[str]]:
    """The next version, relaxed to accept ``source_text``; (None, []) when nothing needed to change."""
    schema = schemas.load(duck, name)
    run = validate(duck, source_text, schema, full_statistics=True)
    found = anomalies(run)
    new = schema.successor(action="accept", reason="", source=run.source.label)
    changes: list[str] = []
    refused: list[str] = []
    for anomaly in found:
        change = _relax(new, run, anomaly)
        if change:
            changes.append(change)
        elif anomaly.anomaly_type == "CUSTOM_VALIDATION":
            refused.append(f"{anomaly.description} (fix the data or DROP CHECK)")
    if not changes:
        return None, refused
    new.reference = references.build(run.stats)  # drift is measured since the data last accepted
    reason = f"ACCEPT {run.source.label}: " + "; ".join(dict.fromkeys(changes))
    if refused:
        reason += "; not accepted: " + "; ".join(refused)
    if why:
        reason += f" -- {why}"
    new.reason = reason
    schemas.save(duck, new)
    return new, changes


#: A domain that ACCEPT grows past this many values is dropped (values are counted exactly up to it).
MAX_GROWN_DOMAIN = 1000


def _relax(new: DataSchema, run, anomaly) -> str | None:
    """The change that absorbs ``anomaly``, in words (None: none can), made to ``new``; each
    constraint it changed now rests on the accepted data, and its evidence says so."""
    name = anomaly.column_name
    before = new.columns.get(name) if name else None
    rules = {kind: inference.rule_text(before, kind) for kind in _EVIDENCE_KINDS} if before is not None else {}
    change = _relaxation(new, run, anomaly)
    after = new.columns.get(name) if name else None
    if change and before is not None and after is not None:
        for kind, rule in rules.items():
            if inference.rule_text(after, kind) != rule:
                inference.add_evidence(after, kind, f"ACCEPT {run.source.label}", None)
    return change


_EVIDENCE_KINDS = ("presence", "valid_range", "range", "domain", "unique", "nan", "length")


def _relaxation(new: DataSchema, run, anomaly) -> str | None:
    name = anomaly.column_name
    kind = anomaly.anomaly_type
    stats = run.stats.columns.get(name) if name else None
    column = new.columns.get(name) if name else None
    if anomaly.family == "drift":
        return f"{name!r} moved: the batch is the drift reference now"
    if kind == "SCHEMA_NEW_COLUMN":
        added = inference.infer_column(stats)
        added.position = max((c.position for c in new.columns.values()), default=-1) + 1
        new.columns[name] = added
        return f"new column {name!r} ({stats.data_type})"
    if kind == "SCHEMA_MISSING_COLUMN":
        column.min_fraction = 0.0
        return f"{name!r} may be absent"
    if kind == "UNEXPECTED_DATA_TYPE":
        adopted = inference.infer_column(stats)
        adopted.position, adopted.environments = column.position, column.environments
        new.columns[name] = adopted
        return f"{name!r} is now {stats.data_type} (was {column.data_type})"
    if kind in ("FEATURE_TYPE_LOW_FRACTION_PRESENT", "FEATURE_TYPE_NOT_PRESENT"):
        low, _ = wilson_bounds(stats.count, stats.rows)
        column.min_fraction = round(min(column.min_fraction, low), 6)
        return f"{name!r} presence relaxed to {column.min_fraction:.2%}"
    if kind == "ENUM_TYPE_UNEXPECTED_STRING_VALUES":
        if not stats.values_exact:
            column.domain, column.min_domain_mass = None, None
            return f"{name!r} domain dropped (too many values)"
        added = sorted(v for v in stats.values if v not in set(column.domain))
        limit = MAX_GROWN_DOMAIN  # what counts as categorical was decided at inference; growing is fine
        if len(column.domain) + len(added) > limit:
            column.domain, column.min_domain_mass = None, None
            return f"{name!r} domain dropped (over {limit} values)"
        column.domain = sorted(set(column.domain) | set(added))
        shown = ", ".join(added[:8]) + (", ..." if len(added) > 8 else "")
        return f"{name!r} domain +{len(added)} ({shown})"
    if kind in ("INT_TYPE_SMALL_INT", "FLOAT_TYPE_SMALL_FLOAT", "INT_TYPE_BIG_INT", "FLOAT_TYPE_BIG_FLOAT"):
        widened = inference.infer_column(stats)
        low = min(x for x in (column.min_value, widened.min_value, stats.min) if x is not None)
        high = max(x for x in (column.max_value, widened.max_value, stats.max) if x is not None)
        before = (column.min_value, column.max_value)
        column.min_value = low if column.min_value is not None else None
        column.max_value = high if column.max_value is not None else None
        changes = []
        if before != (column.min_value, column.max_value):
            changes.append(f"{name!r} bounds {_range(*before)} -> {_range(column.min_value, column.max_value)}")
        valid = (column.valid_min, column.valid_max)
        if column.valid_min is not None and stats.min is not None and stats.min < column.valid_min:
            column.valid_min = stats.min
        if column.valid_max is not None and stats.max is not None and stats.max > column.valid_max:
            column.valid_max = stats.max
        if valid != (column.valid_min, column.valid_max):
            changes.append(f"{name!r} valid range {_range(*valid)} -> {_range(column.valid_min, column.valid_max)}")
        return "; ".join(changes) or None
    if kind == "FLOAT_TYPE_HAS_NAN":
        column.allow_nan = True
        return f"{name!r} may hold NaN"
    if kind == "FLOAT_TYPE_HAS_INF":
        column.allow_inf = True
        return f"{name!r} may hold infinities"
    if kind == "FEATURE_TYPE_LOW_NUMBER_VALUES":
        column.min_length = stats.min_length
        return f"{name!r} lists may have {stats.min_length} values"
    if kind == "FEATURE_TYPE_HIGH_NUMBER_VALUES":
        column.max_length = stats.max_length
        return f"{name!r} lists may have {stats.max_length} values"
    if kind == "UNIQUENESS_VIOLATED":
        column.is_unique = False
        return f"{name!r} need not be unique"
    if kind == "DATASET_LOW_NUM_EXAMPLES":
        new.min_rows = run.stats.row_count
        return f"min_rows {new.min_rows:,}"
    if kind == "DATASET_HIGH_NUM_EXAMPLES":
        new.max_rows = run.stats.row_count
        return f"max_rows {new.max_rows:,}"
    return None


def _range(low, high) -> str:
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    return f"[{lo}, {hi}]"


# -- checks and settings ---------------------------------------------------------------


def add_check(duck, name: str, check_name: str, scope: str, expression: str) -> DataSchema:
    schema = schemas.load(duck, name)
    if check_name in schema.checks:
        raise ObjectExistsError(f"check on data schema {name!r}", check_name)
    check = custom.new_check(duck, schema, check_name, scope, expression)
    new = schema.successor(action="add check", reason=f"ADD {'STATISTICS ' if scope == custom.STATISTICS else ''}CHECK {check_name}: {check.expression}")
    new.checks[check_name] = check
    schemas.save(duck, new)
    return new


def drop_check(duck, name: str, check_name: str, *, missing_ok: bool = False) -> DataSchema | None:
    schema = schemas.load(duck, name)
    if check_name not in schema.checks:
        if missing_ok:
            return None
        raise UnknownObjectError(f"check on data schema {name!r}", check_name, schema.checks)
    new = schema.successor(action="drop check", reason=f"DROP CHECK {check_name}")
    del new.checks[check_name]
    schemas.save(duck, new)
    return new


#: SET (...) options for the whole schema: name -> validator
DATASET_SETTINGS = {
    "min_rows": "count",
    "max_rows": "count",
    "significance": "probability",
}

#: SET COLUMN c (...) options: name -> (attribute, validator)
COLUMN_SETTINGS = {
    "min": ("min_value", "number"),
    "max": ("max_value", "number"),
    "valid_min": ("valid_min", "number"),
    "valid_max": ("valid_max", "number"),
    "min_range_mass": ("min_range_mass", "fraction"),
    "domain": ("domain", "strings"),
    "min_domain_mass": ("min_domain_mass", "fraction"),
    "min_fraction": ("min_fraction", "fraction"),
    "unique": ("is_unique", "bool"),
    "allow_nan": ("allow_nan", "bool"),
    "allow_inf": ("allow_inf", "bool"),
    "min_length": ("min_length", "count"),
    "max_length": ("max_length", "count"),
    "environments": ("environments", "strings"),
    "drift_jsd": ("drift_jsd", "fraction"),
    "drift_linf": ("drift_linf", "fraction"),
}


def set_options(duck, name: str, options: dict, column: str | None = None) -> DataSchema:
    """``SET (...)`` on the schema or ``SET COLUMN c (...)``: the next version, as given."""
    schema = schemas.load(duck, name)
    where = f"ALTER DATA SCHEMA {name} SET" + (f" COLUMN {column}" if column else "")
    if not options:
        raise InvalidOptionError(where, "", "nothing to set")
    new = schema.successor(action="set", reason="")
    if column is None:
        for key, value in options.items():
            if key not in DATASET_SETTINGS:
                raise InvalidOptionError(where, key, allowed=DATASET_SETTINGS)
            setattr(new, key, _checked(where, key, value, DATASET_SETTINGS[key]))
        _ordered(where, ("min_rows", new.min_rows), ("max_rows", new.max_rows))
    else:
        target = new.columns.get(column)
        if target is None:
            raise UnknownObjectError("column", column, new.columns, hint=f"(data schema {name!r} has no such column)")
        changed = {}
        for key, value in options.items():
            if key not in COLUMN_SETTINGS:
                raise InvalidOptionError(where, key, allowed=COLUMN_SETTINGS)
            attribute, rule = COLUMN_SETTINGS[key]
            changed[attribute] = _checked(where, key, value, rule)
        if "domain" in changed and changed["domain"] is not None and "min_domain_mass" not in changed and target.min_domain_mass is None:
            changed["min_domain_mass"] = 1.0
        if ("min_value" in changed or "max_value" in changed) and "min_range_mass" not in changed and target.min_range_mass is None:
            changed["min_range_mass"] = 1.0
        updated = replace(target, **changed)
        _ordered(where, ("min", updated.min_value), ("max", updated.max_value))
        _ordered(where, ("valid_min", updated.valid_min), ("valid_max", updated.valid_max))
        _ordered(where, ("min_length", updated.min_length), ("max_length", updated.max_length))
        for kind in _EVIDENCE_KINDS:  # what changed now rests on the user's word
            if inference.rule_text(updated, kind) != inference.rule_text(target, kind):
                inference.add_evidence(updated, kind, "set by hand (ALTER DATA SCHEMA ... SET COLUMN)", None)
        new.columns[column] = updated
    new.reason = "SET " + (f"COLUMN {column} " if column else "") + ", ".join(f"{k} := {v!r}" for k, v in options.items())
    schemas.save(duck, new)
    return new


def _ordered(where: str, low: tuple, high: tuple) -> None:
    """Refuse a lower bound above its upper bound (after the SET; NULL is no bound)."""
    (low_name, low_value), (high_name, high_value) = low, high
    if low_value is not None and high_value is not None and low_value > high_value:
        raise InvalidOptionError(
            where, low_name, f"{low_name} {low_value!r} is above {high_name} {high_value!r}; no value could pass both"
        )


def _checked(where: str, key: str, value, rule: str):
    if value is None:
        if key in ("min_fraction", "unique", "allow_nan", "allow_inf", "significance"):
            raise InvalidOptionError(where, key, "cannot be NULL")
        return None
    ok = {
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
        "count": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "fraction": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1,
        "probability": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 0.5,
        "bool": lambda v: isinstance(v, bool),
        "strings": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    }[rule]
    if not ok(value):
        raise InvalidOptionError(where, key, f"expected {_RULE_TEXT[rule]}, got {value!r}")
    if rule == "number":
        return float(value)
    if rule == "strings":
        return sorted(set(value)) if key == "domain" else [x.lower() for x in value]
    return value


_RULE_TEXT = {
    "number": "a finite number",
    "count": "a non-negative integer",
    "fraction": "a number between 0 and 1",
    "probability": "a probability between 0 and 0.5",
    "bool": "TRUE or FALSE",
    "strings": "a list of strings",
}


def drop(duck, name: str, *, missing_ok: bool = False) -> bool:
    if not schemas.exists(duck, name):
        if missing_ok:
            return False
        raise UnknownObjectError(schemas.KIND, name, _schema_names(duck))
    schemas.drop(duck, name)
    return True


def _schema_names(duck) -> list[str]:
    from sqlml import catalog

    return catalog.object_names(duck, schemas.KIND)
