"""DuckDB errors of the labeling macros, told in sqlml's terms.

``ml_lf_summary``, ``ml_label_stats``, ``ml_votes`` and ``ml_majority_vote`` are plain SQL:
they read ``sqlml.votes_<h>`` / ``sqlml.rows_<h>``, which APPLY LABELING FUNCTIONS creates.
Before the first APPLY, DuckDB fails while binding the macro with "Table with name
votes_<h> does not exist", naming only the hash. This finds the table behind the hash
and says what to do (see ``sqlml.errors.ERROR_EXPLAINERS``).
"""

from __future__ import annotations

import re

from sqlml.errors import LabelingError
from sqlml.labeling.store import canonical_table, storage_id
from sqlml.sqlutil import table_ref

_MISSING = re.compile(r"Table with name (?:votes|rows)_([0-9a-f]{16}) does not exist")
_NO_GOLD = re.compile(r"COALESCE\('((?:[^']|'')*)', '__sqlml_no_gold'\)")
_PLAIN = re.compile(r"^[a-z_][a-z0-9_]*$")


def explain_missing_storage(error: BaseException, session) -> LabelingError | None:
    if "resulted in an empty set of columns" in str(error):
        gold = _NO_GOLD.search(str(error))
        if gold is not None:  # ml_lf_summary(t, gold := 'nope'): the COLUMNS(...) picking the gold column found none
            name = gold.group(1).replace("''", "'")
            return LabelingError(f"ml_lf_summary: gold := {name!r} is not a column of the table; name the column holding the expert labels")
    match = _MISSING.search(str(error))
    if match is None:
        return None
    storage = match.group(1)
    with session.cursor() as cur:
        labeled = cur.execute("SELECT parts FROM sqlml.label_sets WHERE storage = ?", [storage]).fetchall()
        if labeled:
            shown = _shown(list(labeled[0][0]))
            return LabelingError(
                f"table {shown!r} has labeling functions but no votes yet; "
                f"run APPLY LABELING FUNCTIONS ON {shown} first."
            )
        relations = cur.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "UNION ALL SELECT schema_name, view_name FROM duckdb_views() "
            "WHERE database_name = current_database() AND NOT internal"
        ).fetchall()
    for schema, name in relations:
        parts = [name] if schema == "main" else [schema, name]
        if any("." in p for p in parts):
            continue  # never labeled (canonical_table refuses dotted names)
        if storage_id(canonical_table(parts)) == storage:
            shown = _shown(parts)
            return LabelingError(
                f"table {shown!r} has no labeling functions and no votes; create some with "
                f"CREATE LABELING FUNCTION ... ON {shown}, then run APPLY LABELING FUNCTIONS ON {shown} first."
            )
    return LabelingError(
        "no table of that name has labeling functions or votes (check the name passed to the labeling "
        "macro); create labeling functions ON the table, then run APPLY LABELING FUNCTIONS ON <table> first."
    )


def _shown(parts: list[str]) -> str:
    return ".".join(parts) if all(_PLAIN.match(p) for p in parts) else table_ref(parts)
