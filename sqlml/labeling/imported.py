"""Votes made elsewhere as labeling functions: ``CREATE LABELING FUNCTIONS ... FROM ...``.

    CREATE [OR REPLACE] LABELING FUNCTIONS ON table FROM COLUMN weak_labels
        [WITH (classes := [...], names := [...] | prefix := 'weak_labels_')]
    CREATE [OR REPLACE] LABELING FUNCTIONS ON table FROM TABLE votes [KEY id]
        [WITH (classes := [...], lf := 'lf', label := 'label', prefix := '')]

The first form reads a label matrix column (``INTEGER[]``, one entry per labeling function,
-1 or NULL abstains: WRENCH's ``weak_labels``, snorkel's ``L`` rows); entry j becomes the
labeling function ``names[j]`` (default ``<prefix>j``). The second reads a long table of
votes (key, lf, label): each distinct ``lf`` becomes one labeling function that votes its
row's ``label`` (a class name, or a 0-based index with -1 abstaining). Both are ordinary
labeling functions of kind ``imported`` (an SQL expression over the column, or a lookup
into the votes table), so APPLY (incremental), ml_lf_summary, every label model and
ml_label_model_predict work on them. Every vote is checked against the classes before
anything is written.
"""

from __future__ import annotations

from sqlml.errors import DataError, InvalidOptionError, LabelingError, ObjectExistsError
from sqlml.labeling import store
from sqlml.labeling.lf import INTEGER_TYPES, save_lf, source_columns
from sqlml.sqlutil import fetch_one, quote_ident, quote_literal, table_ref

COLUMN_OPTIONS = ("classes", "names", "prefix")
TABLE_OPTIONS = ("classes", "lf", "label", "prefix")
WHERE = "CREATE LABELING FUNCTIONS"


def _classes(duck, table: str, options: dict) -> list[str]:
    label_set = store.get_label_set(duck, table)
    declared = options.get("classes")
    if declared is not None:
        return [str(c) for c in declared]
    if label_set is None:
        raise LabelingError(
            f"table {table!r} has no classes yet: declare them, e.g. CREATE LABELING FUNCTIONS ON {table} "
            f"FROM ... WITH (classes := ['ham', 'spam'])."
        )
    return label_set.classes


def _check_new(duck, names: list[str], replace: bool) -> None:
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise InvalidOptionError(WHERE, "names", f"duplicate labeling function names {dupes}")
    if not replace:
        for name in names:
            if store.get_lf(duck, name) is not None:
                raise ObjectExistsError(store.LF_KIND, name)


def from_column(duck, parts: list[str], column: str, options: dict, replace: bool) -> list[str]:
    """One labeling function per entry of an integer list column."""
    _known(options, COLUMN_OPTIONS)
    table = store.canonical_table(parts)
    columns = source_columns(duck, parts)
    found = columns.get(column.lower())
    if found is None:
        raise DataError(f"table {table!r} has no column {column!r} (it has {', '.join(c for c, _ in columns.values())}).",
                        obj=table, column=column)
    name, sql_type = found
    element = sql_type.upper().split("[", 1)[0]
    if "[" not in sql_type or element not in INTEGER_TYPES:
        raise DataError(
            f"column {column!r} of {table!r} is {sql_type}; votes come from an integer list (INTEGER[]: one class "
            f"index per labeling function, -1 abstains).", obj=table, column=column,
        )
    classes = _classes(duck, table, options)
    col, src = quote_ident(name), table_ref(parts)
    width, bad, example = fetch_one(
        duck,
        # the vote's alias cannot be a column name of the table (a column named v would win)
        f"SELECT max(len({col})), count(*) FILTER (WHERE __sqlml_vote <> -1 AND (__sqlml_vote < 0 OR __sqlml_vote >= ?)), "
        f"min(__sqlml_vote) FILTER (WHERE __sqlml_vote <> -1 AND (__sqlml_vote < 0 OR __sqlml_vote >= ?)) "
        f"FROM (SELECT {col}, unnest({col}) AS __sqlml_vote FROM {src})",
        [len(classes), len(classes)],
    )
    if bad:
        raise DataError(
            f"column {column!r} of {table!r} holds {bad} vote(s) outside the classes {classes} (e.g. {example}); "
            f"a vote is a 0-based class index (0 .. {len(classes) - 1}), -1 or NULL abstains.", obj=table, column=column,
        )
    if not width:
        raise DataError(f"column {column!r} of {table!r} holds no votes (every list is empty or NULL).",
                        obj=table, column=column)
    names = options.get("names")
    if names is not None:
        if not isinstance(names, list) or len(names) != width or not all(isinstance(n, str) and n for n in names):
            raise InvalidOptionError(WHERE, "names", f"give {width} labeling function names, one per list entry")
    else:
        prefix = str(options.get("prefix", f"{name}_"))
        names = [f"{prefix}{j}" for j in range(width)]
    _check_new(duck, names, replace)
    for j, lf_name in enumerate(names):
        entry = f"{col}[{j + 1}]"
        definition = f"CASE WHEN {entry} <> -1 THEN {entry} END"
        save_lf(duck, name=lf_name, parts=parts, classes=classes, kind="imported", definition=definition,
                output="index", inputs=None, fault_tolerant=False, replace=True)
    return names


def from_table(duck, parts: list[str], votes: list[str], key: str | None, options: dict, replace: bool) -> list[str]:
    """One labeling function per distinct ``lf`` of a long (key, lf, label) votes table."""
    _known(options, TABLE_OPTIONS)
    table = store.canonical_table(parts)
    votes_name = ".".join(votes)
    target_columns = source_columns(duck, parts)
    vote_columns = source_columns(duck, votes)
    if key is None:
        label_set = store.get_label_set(duck, table)
        key = label_set.key if label_set is not None else None
    if key is None:
        raise DataError(f"give the key column that joins {votes_name!r} to {table!r}: ... FROM TABLE {votes_name} KEY id",
                        obj=table)
    roles = {"key": key, "lf": str(options.get("lf", "lf")), "label": str(options.get("label", "label"))}
    for role, column in roles.items():
        if column.lower() not in vote_columns:
            raise DataError(f"votes table {votes_name!r} has no {role} column {column!r} "
                            f"(it has {', '.join(c for c, _ in vote_columns.values())}).", obj=votes_name, column=column)
    if key.lower() not in target_columns:
        raise DataError(f"table {table!r} has no key column {key!r}.", obj=table, column=key)
    k_col, lf_col, label_col = (quote_ident(vote_columns[roles[r].lower()][0]) for r in ("key", "lf", "label"))
    label_type = vote_columns[roles["label"].lower()][1].upper()
    output = "index" if label_type in INTEGER_TYPES else "name"
    if output == "name" and label_type != "VARCHAR":
        raise DataError(f"label column {roles['label']!r} of {votes_name!r} is {label_type}; give class names "
                        f"(VARCHAR) or 0-based class indexes (integers).", obj=votes_name, column=roles["label"])
    classes = _classes(duck, table, options)
    vsrc = table_ref(votes)
    if output == "index":
        outside = f"{label_col} <> -1 AND ({label_col} < 0 OR {label_col} >= {len(classes)})"
    else:
        outside = f"NOT list_contains(?::VARCHAR[], {label_col})"
    params = [] if output == "index" else [classes]
    bad, example = fetch_one(
        duck, f"SELECT count(*), min(CAST({label_col} AS VARCHAR)) FROM {vsrc} WHERE {label_col} IS NOT NULL AND {outside}",
        params,
    )
    if bad:
        raise DataError(
            f"votes table {votes_name!r} holds {bad} vote(s) outside the classes {classes} (e.g. {example!r}); "
            f"a vote is a class name or a 0-based index, -1 or NULL abstains.", obj=votes_name, column=roles["label"],
        )
    duplicates = fetch_one(duck, f"SELECT count(*) - count(DISTINCT ({k_col}, {lf_col})) FROM {vsrc}")[0]
    if duplicates:
        raise DataError(f"votes table {votes_name!r} has {duplicates} repeated ({roles['key']}, {roles['lf']}) "
                        f"pair(s); each labeling function votes at most once per row.", obj=votes_name)
    lf_values = [r[0] for r in duck.execute(
        f"SELECT DISTINCT CAST({lf_col} AS VARCHAR) AS v FROM {vsrc} WHERE {lf_col} IS NOT NULL ORDER BY v"
    ).fetchall()]
    if not lf_values:
        raise DataError(f"votes table {votes_name!r} is empty: there are no labeling functions to import.", obj=votes_name)
    prefix = str(options.get("prefix", ""))
    names = [f"{prefix}{v}" for v in lf_values]
    _check_new(duck, names, replace)
    target_key = f"{table_ref(parts)}.{quote_ident(target_columns[key.lower()][0])}"
    for value, lf_name in zip(lf_values, names, strict=True):
        definition = (f"(SELECT __v.{label_col} FROM {vsrc} AS __v WHERE __v.{k_col} = {target_key} "
                      f"AND CAST(__v.{lf_col} AS VARCHAR) = {quote_literal(value)})")
        save_lf(duck, name=lf_name, parts=parts, classes=classes, kind="imported", definition=definition,
                output=output, inputs=None, fault_tolerant=False, replace=True)
    return names


def _known(options: dict, allowed: tuple[str, ...]) -> None:
    for option in options:
        if option not in allowed:
            raise InvalidOptionError(WHERE, option, allowed=allowed)
