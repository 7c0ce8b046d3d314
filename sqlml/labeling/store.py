"""What the catalog keeps for labeling: label sets (a table's classes and vote storage) and LF rows.

A *label set* is what sqlml knows about one labeled table: its classes, its key column,
and two tables in schema ``sqlml`` named from a hash of the table name (so that pure
SQL in ``sql/macros/10_labeling.sql`` finds them from the name alone):

* ``sqlml.votes_<h>(<key>, lf SMALLINT, label SMALLINT)`` one row per non-abstain vote;
* ``sqlml.rows_<h>(<key>)`` the rows APPLY has labeled (abstain-only rows included).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlml import catalog
from sqlml.errors import DataError, LabelingError, UnknownObjectError
from sqlml.sqlutil import fetch_one, fetch_value, quote_ident, split_name, table_ref

LF_KIND = "labeling function"
MODEL_KIND = "label model"
RESERVED_KEY_NAMES = ("lf", "label")


def canonical_table(parts: list[str]) -> str:
    """'Main.Comments' and 'comments' both -> 'comments'; other schemas stay qualified.

    The parts are joined as written (no quoting), so ``ml_lf_summary('my "odd" table')``
    names the table ``"my ""odd"" table"``.
    """
    dotted = next((p for p in parts if "." in p), None)
    if dotted is not None:
        raise LabelingError(
            f"labeling needs a table name without dots; {table_ref(parts)} would read as a schema-qualified name "
            f"in the labeling macros (ml_lf_summary, ml_votes, ...). Label a view instead: "
            f"CREATE VIEW {quote_ident(dotted.replace('.', '_'))} AS SELECT * FROM {table_ref(parts)}"
        )
    parts = [p.lower() for p in parts]
    if len(parts) == 2 and parts[0] == "main":
        parts = parts[1:]
    return ".".join(parts)


def table_parts(name: str | list[str]) -> list[str]:
    """A Python-side table name: a list of parts, or a string in SQL syntax (``'s.t'``, ``'"a b"'``)."""
    return list(name) if not isinstance(name, str) else split_name(name)


def storage_id(table: str) -> str:
    return hashlib.md5(table.encode()).hexdigest()[:16]


@dataclass
class LabelSet:
    table: str  # canonical name
    parts: list[str]  # the name as written, for SQL
    classes: list[str]
    key: str | None
    key_type: str | None
    storage: str

    @property
    def k(self) -> int:
        return len(self.classes)

    @property
    def source_sql(self) -> str:
        return table_ref(self.parts)

    @property
    def votes_sql(self) -> str:
        return f"sqlml.{quote_ident('votes_' + self.storage)}"

    @property
    def rows_sql(self) -> str:
        return f"sqlml.{quote_ident('rows_' + self.storage)}"

    @property
    def key_sql(self) -> str:
        return quote_ident(self.key)


@dataclass
class LFRow:
    name: str
    table: str
    lf_id: int
    kind: str
    definition: str
    inputs: list[str] | None
    output: str
    fault_tolerant: bool
    fingerprint: str
    applied_fingerprint: str | None
    faults: int

    @property
    def stale(self) -> bool:
        return self.fingerprint != self.applied_fingerprint


def get_label_set(duck, table: str) -> LabelSet | None:
    row = fetch_one(
        duck,
        "SELECT table_name, parts, classes, key_column, key_type, storage FROM sqlml.label_sets WHERE table_name = ?",
        [table],
    )
    return None if row is None else LabelSet(row[0], list(row[1]), list(row[2]), row[3], row[4], row[5])


def require_label_set(duck, table: str) -> LabelSet:
    found = get_label_set(duck, table)
    if found is None:
        known = [r[0] for r in duck.execute("SELECT table_name FROM sqlml.label_sets").fetchall()]
        raise UnknownObjectError(
            "labeled table", table, known, "Create a labeling function ON it first (CREATE LABELING FUNCTION ... ON table)."
        )
    return found


def create_label_set(duck, table: str, parts: list[str], classes: list[str]) -> LabelSet:
    storage = storage_id(table)
    duck.execute(
        "INSERT INTO sqlml.label_sets (table_name, parts, classes, storage) VALUES (?, ?, ?, ?)",
        [table, parts, classes, storage],
    )
    return LabelSet(table, parts, classes, None, None, storage)


def set_key(duck, label_set: LabelSet, key: str, key_type: str) -> None:
    if key.lower() in RESERVED_KEY_NAMES:
        raise DataError(
            f"the key column of {label_set.table!r} cannot be named {key!r} (the votes table uses "
            f"columns lf and label); use another key column.",
            obj=label_set.table,
            column=key,
        )
    duck.execute(
        "UPDATE sqlml.label_sets SET key_column = ?, key_type = ? WHERE table_name = ?",
        [key, key_type, label_set.table],
    )
    duck.execute(f"CREATE TABLE IF NOT EXISTS {label_set.votes_sql} ({quote_ident(key)} {key_type}, lf SMALLINT, label SMALLINT)")
    duck.execute(f"CREATE TABLE IF NOT EXISTS {label_set.rows_sql} ({quote_ident(key)} {key_type})")
    label_set.key, label_set.key_type = key, key_type


def drop_label_set(duck, label_set: LabelSet) -> None:
    duck.execute(f"DROP TABLE IF EXISTS {label_set.votes_sql}")
    duck.execute(f"DROP TABLE IF EXISTS {label_set.rows_sql}")
    duck.execute("DELETE FROM sqlml.label_sets WHERE table_name = ?", [label_set.table])


_LF_COLUMNS = (
    "name, table_name, lf_id, kind, definition, inputs, output, fault_tolerant, fingerprint, applied_fingerprint, faults"
)


def _lf(row) -> LFRow:
    return LFRow(row[0], row[1], int(row[2]), row[3], row[4], list(row[5]) if row[5] is not None else None,
                 row[6], bool(row[7]), row[8], row[9], int(row[10]))


def get_lf(duck, name: str) -> LFRow | None:
    row = fetch_one(duck, f"SELECT {_LF_COLUMNS} FROM sqlml.labeling_functions WHERE name = ?", [name])
    return None if row is None else _lf(row)


def require_lf(duck, name: str) -> LFRow:
    found = get_lf(duck, name)
    if found is None:
        raise UnknownObjectError(LF_KIND, name, catalog.object_names(duck, LF_KIND))
    return found


def lfs_of(duck, table: str) -> list[LFRow]:
    rows = duck.execute(
        f"SELECT {_LF_COLUMNS} FROM sqlml.labeling_functions WHERE table_name = ? ORDER BY lf_id", [table]
    ).fetchall()
    return [_lf(r) for r in rows]


def next_lf_id(duck, table: str) -> int:
    value = fetch_value(duck, "SELECT max(lf_id) FROM sqlml.labeling_functions WHERE table_name = ?", [table])
    next_id = 0 if value is None else int(value) + 1
    if next_id > 32767:
        raise LabelingError(f"table {table!r} has run out of labeling function ids (32768).")
    return next_id


def lock_label_set(duck, table: str) -> None:
    """Serialize changes to one table's labeling functions across cursors.

    A no-op update of the label set's row: DuckDB refuses a second concurrent update of
    a row, so of two statements adding LFs to one table at once one fails (``ConflictError``)
    instead of both taking the same ``lf_id``.
    """
    duck.execute("UPDATE sqlml.label_sets SET classes = classes WHERE table_name = ?", [table])


def put_lf(duck, lf: LFRow) -> None:
    applied_at = fetch_value(duck, "SELECT applied_at FROM sqlml.labeling_functions WHERE name = ?", [lf.name])
    duck.execute("DELETE FROM sqlml.labeling_functions WHERE name = ?", [lf.name])
    duck.execute(
        f"INSERT INTO sqlml.labeling_functions ({_LF_COLUMNS}, applied_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [lf.name, lf.table, lf.lf_id, lf.kind, lf.definition, lf.inputs, lf.output, lf.fault_tolerant,
         lf.fingerprint, lf.applied_fingerprint, lf.faults, applied_at if lf.applied_fingerprint else None],
    )
    props = {"table": lf.table, "kind": lf.kind, "definition": lf.definition, "output": lf.output}
    if lf.inputs:
        props["inputs"] = lf.inputs
    catalog.put_object(duck, LF_KIND, lf.name, props, replace=True)


def mark_applied(duck, faults_by_name: dict[str, int]) -> None:
    """The votes of these LFs are now current; record their fault counts (one UPDATE)."""
    if not faults_by_name:
        return
    duck.execute(
        "UPDATE sqlml.labeling_functions AS f SET applied_fingerprint = fingerprint, applied_at = current_timestamp, "
        "faults = u.faults FROM (SELECT unnest(?) AS name, unnest(?) AS faults) AS u WHERE f.name = u.name",
        [list(faults_by_name), list(faults_by_name.values())],
    )


def delete_lf(duck, lf: LFRow) -> None:
    duck.execute("DELETE FROM sqlml.labeling_functions WHERE name = ?", [lf.name])
    catalog.delete_object(duck, LF_KIND, lf.name, missing_ok=True)
