"""What a model version was trained on, recorded with it (``ml_lineage('m')``).

    tables          the tables and views the training query reads
    label_model     the label model whose output table it reads (a label model writes a
                    table of its own name), with its method and when it was fitted
    data_schema     the schema of ``validate := 'schema'`` and the version checked against
    validation      that check's result: passed, and the warnings it let through

Recorded inside the CREATE MODEL transaction, so it describes exactly the run that
made the version.
"""

from __future__ import annotations

from typing import Any

from sqlml import catalog

LABEL_MODEL_KIND = "label model"  # the labeling area's catalog kind (a name, not an import)


def query_tables(query: str) -> list[str]:
    """Tables a query reads (CTE names left out); empty if sqlglot cannot read it."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(query, read="duckdb")
    except sqlglot.errors.ParseError:
        return []
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    names = []
    for table in tree.find_all(exp.Table):
        if not table.name or table.name in ctes:
            continue
        name = ".".join(part for part in (table.db, table.name) if part)
        if name not in names:
            names.append(name)
    return names


def lineage(duck, query: str, options: dict[str, Any], validation: dict[str, Any] | None) -> dict[str, Any]:
    tables = query_tables(query)
    found: dict[str, Any] = {"tables": tables, "label_model": None, "data_schema": None, "validation": validation}
    for table in tables:
        label_model = catalog.get_object(duck, LABEL_MODEL_KIND, table.split(".")[-1])
        if label_model is not None:
            props = label_model["properties"]
            found["label_model"] = {
                "name": label_model["name"],
                "method": props.get("method"),
                "fitted_at": props.get("fitted_at"),
                "rows": props.get("rows"),
                "table": props.get("table"),
            }
            break
    schema = options.get("validate")
    if schema:
        entry = catalog.get_object(duck, "data schema", schema)
        found["data_schema"] = {"name": schema, "version": entry["properties"].get("version") if entry else None}
    return found
