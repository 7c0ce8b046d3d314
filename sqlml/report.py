"""The HTML report: one static page with what a project's database knows.

    sqlml report project.duckdb --out report.html          # the command
    SELECT * FROM ml_report('report.html')                 -- from SQL
    sqlml.report.write_report(con, "report.html")          # from Python

For each data schema: its columns and bounds, the stored statistics of the data it was
inferred from, its latest validation (``ml_validate`` keeps every run) and the drift of
that data against the schema's data. For each labeled table: the labeling functions'
summary and each label model's confidence. For each model: its card and training curves;
for each grid, every configuration's curves; the serving log when there is one. Pictures
are inline (PNG, or SVG with ``picture='svg'``); the page has no script and loads nothing.
"""

from __future__ import annotations

import datetime
import html
import logging
import sys
from typing import Any

from sqlml import plots, views
from sqlml.views.base import literal, read, table_html

log = logging.getLogger("sqlml.report")

STYLE = """
body { font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 0; color: #222; background: #fafafa; }
header { background: #263238; color: #fff; padding: 16px 32px; }
header h1 { margin: 0 0 4px 0; font-size: 22px; }
header p { margin: 0; color: #cfd8dc; font-size: 13px; }
nav { padding: 8px 32px; background: #eceff1; font-size: 14px; }
nav a { margin-right: 16px; color: #1565c0; text-decoration: none; }
main { padding: 8px 32px 48px 32px; max-width: 1200px; }
h2 { border-bottom: 2px solid #cfd8dc; padding-bottom: 4px; margin-top: 36px; }
h3 { margin: 24px 0 8px 0; font-size: 17px; }
section.sqlml-view { background: #fff; border: 1px solid #e0e0e0; border-radius: 6px; padding: 8px 16px 16px 16px; margin: 12px 0; }
img.sqlml-figure, div.sqlml-figure svg { max-width: 100%; height: auto; display: block; margin: 8px 0; }
table.sqlml-table { border-collapse: collapse; font-size: 12px; margin: 8px 0; }
table.sqlml-table th, table.sqlml-table td { border: 1px solid #e0e0e0; padding: 3px 8px; vertical-align: top; }
table.sqlml-table th { background: #f5f5f5; text-align: left; }
.sqlml-ok { color: #2e7d32; } .sqlml-empty, .sqlml-more { color: #757575; font-size: 13px; }
.sqlml-error { color: #b71c1c; background: #ffebee; padding: 8px; border-radius: 4px; }
"""


def build_report(con, *, title: str | None = None, picture: str = "png") -> str:
    """The report's HTML for the database behind ``con`` (an sqlml Connection)."""
    sections = [
        ("data", "Data schemas", _data_sections),
        ("labels", "Labels", _label_sections),
        ("models", "Models", _model_sections),
        ("serving", "Serving", _serving_sections),
    ]
    database = getattr(con, "database", "")
    title = title or f"sqlml report: {database}"
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    body, nav = [], []
    for anchor, heading, make in sections:
        parts = []
        for part in make(con):
            parts.append(_render(part, picture))
        if not parts:
            parts = ['<p class="sqlml-empty">(none in this database)</p>']
        nav.append(f'<a href="#{anchor}">{html.escape(heading)}</a>')
        body.append(f'<h2 id="{anchor}">{html.escape(heading)}</h2>' + "".join(parts))
    catalog = read(con, "SELECT kind, count(*) AS objects FROM sqlml.objects GROUP BY kind ORDER BY kind")
    summary = ", ".join(f"{r['objects']} {r['kind']}{'s' if r['objects'] != 1 else ''}" for r in catalog) or "no sqlml objects"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<header><h1>{html.escape(title)}</h1><p>{html.escape(summary)} · written {now}</p></header>"
        f'<nav>{"".join(nav)}</nav><main>{"".join(body)}</main></body></html>'
    )


def write_report(con, path: str, **options: Any) -> str:
    """Write the report to ``path``; returns the path."""
    text = build_report(con, **options)
    with open(path, "w", encoding="utf-8") as out:
        out.write(text)
    return str(path)


def _render(part, picture: str) -> str:
    if isinstance(part, str):
        return part
    title, make = part
    try:
        view = make()
        return view.html(picture) if view is not None else ""
    except Exception as error:  # noqa: BLE001 - one broken section must not hide the rest of the page
        log.warning("report: %s: %s", title, error)
        return f'<section class="sqlml-view"><h3>{html.escape(title)}</h3><p class="sqlml-error">{html.escape(str(error))}</p></section>'


def _names(con, kind: str) -> list[dict[str, Any]]:
    return read(con, f"SELECT name, CAST(properties AS VARCHAR) AS details FROM sqlml.objects WHERE kind = {literal(kind)} ORDER BY name")


def _data_sections(con):
    import json

    for entry in _names(con, "data schema"):
        name = entry["name"]
        details = json.loads(entry["details"]) if entry.get("details") else {}
        source = details.get("source")
        yield f'<h3 id="schema-{html.escape(name)}">data schema {html.escape(name)}</h3>'
        columns = read(
            con,
            f"SELECT column_name, data_type, kind, min_fraction, valid_min, valid_max, min_value, max_value, domain FROM ml_schema({literal(name)})",
        )
        yield table_html(columns)
        if source:
            yield (f"statistics of {plots.short(source)}", lambda source=source, name=name: _nonempty(views.stored_statistics(con, source, schema=name)))
        latest = views.latest_validation(con, name)
        if latest is None:
            yield '<p class="sqlml-empty">never validated: SELECT * FROM ml_validate(new_data, schema) records a run</p>'
            continue
        yield (f"latest validation of {name}", lambda latest=latest: latest)
        run = latest.run
        if source and run is not None:
            yield (f"drift of {plots.short(run['source'])}", lambda run=run, source=source: views.drift(con, run["source"], source))


def _nonempty(view):
    return view if view.rows else None


def _label_sections(con):
    import json

    tables = read(con, "SELECT table_name FROM sqlml.label_sets ORDER BY table_name")
    models = [(m["name"], json.loads(m["details"] or "{}")) for m in _names(con, "label model")]
    for row in tables:
        table = row["table_name"]
        gold = next((d.get("gold") for _, d in reversed(models) if d.get("table") == table and d.get("gold")), None)
        yield (f"labeling functions on {table}", lambda table=table, gold=gold: views.lf_summary(con, table, gold=gold))
    for name, _ in models:
        yield (f"label model {name}", lambda name=name: views.label_confidence(con, name))


def _model_sections(con):
    models = read(con, "SELECT name, CAST(json_extract_string(metrics, '$.grid') AS VARCHAR) AS grid FROM ml_model_versions() WHERE latest ORDER BY name")
    grids = sorted({m["grid"] for m in models if m["grid"]})
    for grid in grids:
        yield (f"grid {grid}", lambda grid=grid: views.grid(con, grid))
    for model in models:
        if not model["grid"]:
            yield (f"model {model['name']}", lambda name=model["name"]: views.model_card(con, name))


def _serving_sections(con):
    view = views.serving(con)
    if view.rows:
        yield ("serving", lambda: view)


def main(database: str, out: str, *, picture: str = "png") -> int:
    """``sqlml report DB --out FILE.html``: 0 when written."""
    import os

    from sqlml.connection import connect

    if not os.path.exists(database):
        print(f"sqlml report: no database {database!r}", file=sys.stderr)
        return 1
    with connect(database, read_only=True) as con:
        write_report(con, out, picture=picture)
    print(f"wrote {out}")
    return 0
