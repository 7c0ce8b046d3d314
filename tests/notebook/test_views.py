"""Pictures and notebook views: each built from SQL on small data, drawn headless, shown as HTML."""

import pandas as pd
import pytest

from sqlml import plots, views


@pytest.fixture
def project(con):
    """Labels, a schema, a model and a grid on a small table with structure."""
    con.sql(
        "CREATE TABLE t AS SELECT range AS id, (range % 10)::DOUBLE AS a, (range * 7 % 13)::DOUBLE AS b, "
        "['red', 'green', 'blue'][range % 3 + 1] AS colour, "
        "CASE WHEN range % 5 = 0 THEN CASE WHEN range % 10 < 5 THEN 'x' ELSE 'y' END END AS gold FROM range(600)"
    )
    con.sql("CREATE LABELING FUNCTION low ON t WITH (classes := ['x', 'y']) AS CASE WHEN a < 4 THEN 'x' END")
    con.sql("CREATE LABELING FUNCTION high ON t AS CASE WHEN a > 5 THEN 'y' END")
    con.sql("CREATE LABELING FUNCTION odd ON t AS CASE WHEN b > 9 THEN 'y' END")
    con.sql("CREATE LABEL MODEL lm ON t KEY id GOLD gold")
    con.sql("CREATE DATA SCHEMA s FROM t")
    query = "SELECT t.a, t.b, l.label FROM t JOIN lm AS l USING (id)"
    con.sql(f"CREATE MODEL m WITH (epochs := 2, validation_split := 0.2) AS {query}")
    con.sql(f"CREATE MODELS g FOR (lr IN (0.01, 0.1)) WITH (epochs := 2, workers := 1, validation_split := 0.2) AS {query}")
    return con


def _axes(view):
    return [axis for axis in view.figure().axes if axis.get_visible()]


def test_lf_summary_and_label_confidence(project):
    summary = views.lf_summary(project, "t", gold="gold")
    assert [r["lf"] for r in summary.rows] == ["low", "high", "odd"]
    assert len(_axes(summary)) == 2  # coverage/overlap/conflict bars, learned vs empirical accuracy
    html = summary._repr_html_()
    assert "<img" in html and "data:image/png;base64," in html and "coverage" in html
    confidence = views.label_confidence(project, "lm")
    assert {r["source"] for r in confidence.rows} >= {"gold", "weak"}
    assert sum(p.get_height() for p in _axes(confidence)[0].patches) == len(confidence.labels)


def test_statistics_with_bounds_and_anomalies_of_a_frame(project):
    n = 60
    batch = pd.DataFrame({"id": range(n), "a": [500.0] * n, "b": [1.0] * n, "colour": ["purple"] * n, "gold": ["x"] * n})
    stats = views.statistics(project, batch, schema="s")
    assert [r["column_name"] for r in stats.rows] == ["id", "a", "b", "colour", "gold"]
    found = views.anomalies(project, batch, "s")
    assert {r["column_name"] for r in found.rows} >= {"colour", "a"}
    assert "<table" in found._repr_html_()
    titles = [axis.get_title() for axis in found.figure().axes if axis.get_visible()]
    assert any(t.startswith("colour") for t in titles) and any(t.startswith("a ") for t in titles)
    drift = views.drift(project, batch, "t")
    assert any(r["is_anomaly"] for r in drift.rows if r["column_name"] == "a")
    assert any("DRIFT" in axis.get_title() for axis in drift.figure().axes)


def test_model_card_and_grid_curves(project, tmp_path):
    card = views.model_card(project, "m")
    assert card.record["name"] == "m" and [r["epoch"] for r in card.runs] == [1, 2]
    loss, metrics = card.figure().axes
    assert len(loss.get_lines()) == 2 and metrics.get_lines()  # train and validation loss; validation metrics
    grid = views.grid(project, "g")
    assert len(grid.rows) == 2
    labels = [line.get_label() for line in grid.figure().axes[0].get_lines()]
    assert any("lr=0.01" in label for label in labels) and any("lr=0.1" in label for label in labels)
    path = grid.save_png(str(tmp_path / "grid.png"))
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_serving_and_occlusion_pictures():
    import datetime

    start = datetime.datetime(2024, 1, 1)
    rows = [{"at": start + datetime.timedelta(seconds=i), "latency_ms": 3.0 + i, "batch_size": 1 + i % 4} for i in range(10)]
    figure = plots.serving(rows)
    assert [len(a.get_lines()[0].get_xdata()) for a in figure.axes] == [10, 10]
    heat = [[0.0, 0.5], [0.25, 1.0]]
    figure = plots.occlusion(heat, title="cat")
    assert len(figure.axes) == 2  # the map and its colour scale
    assert plots.svg(figure).startswith("<svg")


def test_sql_entry_points_write_pictures(project, tmp_path):
    path = str(tmp_path / "lf.png")
    assert project.sql(f"SELECT * FROM ml_plot('lf_summary', 't', '{path}', gold := 'gold')").fetchall() == [("lf_summary", "t", path)]
    assert open(path, "rb").read(4) == b"\x89PNG"
    with pytest.raises(Exception, match="unknown kind"):
        project.sql(f"SELECT * FROM ml_plot('pie', 't', '{path}')").fetchall()


def test_dollar_signs_in_names_and_values_are_drawn_as_text():
    """A query or value holding ``$`` (json paths, prices) must not be read as matplotlib's mathematics."""
    rows = [{"lf": "price_$1", "coverage": 0.5, "overlap": 0.2, "conflict": 0.1, "emp_accuracy": 0.7, "learned_accuracy": 0.6}]
    plots.png(plots.lf_summary(rows, title="SELECT json_extract(f, '$.\"a\"') FROM t"))
    columns = [{"column_name": "cost", "top_values": [{"value": "$5", "count": 3}, {"value": "$$", "count": 1}], "missing_fraction": 0.0}]
    plots.png(plots.column_statistics(columns))
    assert plots.short("SELECT  a,\n b FROM t WHERE x = '$1'" * 5, 30).endswith("…")
