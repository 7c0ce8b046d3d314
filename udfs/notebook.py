"""Pictures and the report from SQL: ``ml_plot`` and ``ml_report``.

Both run before their statement on the caller's connection (``runs_first``), so they
read what the caller sees; the work is in ``sqlml.views`` and ``sqlml.report``.
"""

from contextlib import contextmanager

from sqlml.udf import table_function

PLOTS = ("lf_summary", "label_confidence", "statistics", "model", "grid", "serving", "occlusion")


@table_function(
    "ml_plot",
    columns=[("kind", "VARCHAR"), ("name", "VARCHAR"), ("path", "VARCHAR")],
    params=[("kind", "VARCHAR"), ("name", "VARCHAR"), ("path", "VARCHAR")],
    named=[("data_schema", "VARCHAR", None), ("gold", "VARCHAR", None), ("images", "VARCHAR", None)],
    runs_first=True,
)
def ml_plot(session, kind, name, path, data_schema, gold, images):
    """ml_plot(kind, name, path): draw one picture to a PNG (or SVG) file.

    kind: 'lf_summary' (name: the labeled table; gold := column), 'label_confidence'
    (a label model), 'statistics' (a table or query; data_schema := its schema),
    'model', 'grid' or 'serving' (a model name, or NULL for all), 'occlusion' (a CNN model;
    images := a table or query of images: the first one's occlusion map with its colour scale).
    """
    with _connection(session) as con:
        return _plot(con, kind, name, path, data_schema, gold, images)


def _plot(con, kind, name, path, data_schema, gold, images):
    from sqlml import views
    from sqlml.errors import InvalidOptionError

    make = {
        "lf_summary": lambda: views.lf_summary(con, name, gold=gold),
        "label_confidence": lambda: views.label_confidence(con, name),
        "statistics": lambda: views.statistics(con, name, schema=data_schema),
        "model": lambda: views.model_card(con, name),
        "grid": lambda: views.grid(con, name),
        "serving": lambda: views.serving(con, name),
        "occlusion": lambda: views.occlusion(con, name, images),
    }.get(kind)
    if make is None:
        raise InvalidOptionError("ml_plot", "kind", f"unknown kind {kind!r}; use one of {', '.join(PLOTS)}")
    return [(kind, name, make().save_png(path))]


@table_function(
    "ml_report",
    columns=[("path", "VARCHAR"), ("bytes", "BIGINT")],
    params=[("path", "VARCHAR")],
    named=[("picture", "VARCHAR", "png")],
    runs_first=True,
)
def ml_report(session, path, picture):
    """ml_report(path [, picture := 'svg']): write the HTML report of this database."""
    import os

    from sqlml.report import write_report

    with _connection(session) as con:
        write_report(con, path, picture=picture)
    return [(path, os.path.getsize(path))]


@contextmanager
def _connection(session):
    """An sqlml Connection over the connection the function runs on (the caller's, when run first)."""
    from sqlml.connection import Connection

    with session.cursor() as duck:
        yield Connection.over(duck, session)
