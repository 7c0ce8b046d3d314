"""Validation runs: every ``ml_validate`` call's anomalies, kept so they can be shown again.

The report and ``sqlml.views`` show a data schema's latest validation without the data it
read (a DataFrame long gone, yesterday's batch). ``record := false`` skips it; a
read-only connection never records.
"""

from __future__ import annotations

import json
from typing import Any

from sqlml.sqlutil import fetch_value


def record(duck, schema: str, version: int | None, source: str, rows: list[dict[str, Any]], *, environment=None, baseline=None) -> int:
    """Store one run; returns its id."""
    if version is None:
        from sqlml.validation import schema as schemas

        version = schemas.load(duck, schema).version
    run_id = int(fetch_value(duck, "SELECT nextval('sqlml.validation_run_ids')"))
    errors = sum(1 for r in rows if r.get("severity") == "error")
    duck.execute(
        "INSERT INTO sqlml.validation_runs (run_id, schema_name, schema_version, source, environment, baseline, errors, warnings, anomalies) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [run_id, schema, version, source, environment, baseline, errors, len(rows) - errors, json.dumps(rows, default=str)],
    )
    return run_id
