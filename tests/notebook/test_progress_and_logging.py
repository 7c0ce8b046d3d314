"""Progress on all long work (widgets in notebooks are tested with the tour), and the sqlml logger."""

import logging

import pytest
import torch

import sqlml
from sqlml import progress
from sqlml.incremental.nets import vgg_style

from ..incremental.conftest import static_scene, write_clip


@pytest.fixture
def every_bar():
    """Show every bar at once, as log lines on stderr (pytest's stderr is no terminal)."""
    progress.configure(enabled="auto", delay=0, interval=0)
    assert progress.where() == "log"


def lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("sqlml: ")]


def test_settings_from_the_environment_and_configure(monkeypatch):
    monkeypatch.setenv("SQLML_PROGRESS", "off")
    assert progress.settings()["enabled"] is False
    assert isinstance(progress.start(10, "x"), progress.Silent)
    monkeypatch.setenv("SQLML_PROGRESS", "on")
    monkeypatch.setenv("SQLML_PROGRESS_DELAY", "2.5")
    assert progress.settings() == {"enabled": True, "delay": 2.5, "interval": 10.0}
    assert sqlml.configure_progress(False)["enabled"] is False  # configure wins over the environment
    with pytest.raises(ValueError, match="auto"):
        progress.configure("sometimes")


def test_log_lines_are_periodic_and_end_with_done(capsys):
    bar = progress.LogLines(100, "work", "rows", delay=0, interval=0)
    for _ in range(4):
        bar.update(25)
    bar.close()
    out = lines(capsys)
    assert out[0].startswith("sqlml: work: 25/100 rows (25%) after") and out[-1].startswith("sqlml: work: 100/100 rows (100%) done in")
    quiet = progress.LogLines(100, "short", "rows", delay=60, interval=60)
    quiet.update(100)
    quiet.close()
    assert lines(capsys) == []  # shorter than the delay: nothing


def test_watch_reads_duckdbs_query_progress(capsys):
    import duckdb

    duck = duckdb.connect()
    progress.configure(delay=0, interval=0)
    with progress.watch(duck, "a long query", every=0.02):
        duck.execute("SELECT count(DISTINCT (i * 7919) % 1000003) FROM range(20000000) AS t(i)").fetchall()
    out = lines(capsys)
    assert out and out[-1].startswith("sqlml: a long query: 100/100 %") and "done in" in out[-1]
    assert duck.execute("SELECT current_setting('enable_progress_bar')").fetchall() == [(False,)]  # restored


def test_watch_shows_the_running_querys_percentage(capsys):
    import time

    class Duck:  # a connection whose query is 40% done, then 80%
        def __init__(self):
            self.readings = iter([40.0] * 5 + [80.0] * 1000)

        def query_progress(self):
            return next(self.readings)

        def execute(self, sql):
            class Result:
                def fetchall(self):
                    return [(False,)]

            return Result()

    progress.configure(delay=0, interval=0)
    with progress.watch(Duck(), "query", every=0.01):
        time.sleep(0.3)
    out = lines(capsys)
    assert any(line.startswith("sqlml: query: 40/100 %") for line in out)
    assert any(line.startswith("sqlml: query: 80/100 %") for line in out)
    assert out[-1].startswith("sqlml: query: 100/100 % (100%) done in")


def test_every_long_statement_reports_progress_and_occlusion_maps_draw(con, every_bar, capsys, tmp_path):
    con.sql("CREATE TABLE t AS SELECT range AS id, range % 10 AS a, CASE WHEN range % 4 = 0 THEN 'x' ELSE 'y' END AS gold FROM range(400)")
    con.sql("CREATE LABELING FUNCTION low ON t WITH (classes := ['x', 'y']) AS CASE WHEN a < 3 THEN 'x' END")
    con.sql("APPLY LABELING FUNCTIONS ON t KEY id")
    con.sql("CREATE LABEL MODEL lm ON t GOLD gold")
    con.sql("SELECT * FROM ml_statistics('t')").fetchall()
    con.sql("CREATE MODEL m WITH (epochs := 1) AS SELECT a, gold AS label FROM t")
    clip = write_clip(tmp_path / "clip.avi", static_scene(n=4, h=64, w=96))
    con.sql(f"LOAD VIDEO '{clip}' INTO frames")
    sqlml.register_architecture("progress_vgg", vgg_style, options={"width": 0.25, "layers": None, "batch_norm": False})
    weights = tmp_path / "vgg.pt"
    torch.save(vgg_style((3, 64, 96), 2, {"layers": [8, "M", 8, "M"]}).state_dict(), weights)
    con.sql(
        f"CREATE MODEL cnn WITH (architecture := 'progress_vgg', weights := '{weights}', input_shape := [3, 64, 96], "
        "classes := ['a', 'b'], layers := [8, 'M', 8, 'M'])"
    )
    con.sql("SELECT count(*) FROM ml_video_inference('cnn', 'frames', persist := false)").fetchall()
    con.sql("SELECT count(*) FROM ml_occlusion_map('cnn', 'SELECT * FROM frames LIMIT 1', patch := 32, stride := 32)").fetchall()
    from sqlml import views

    maps = views.occlusion(con, "cnn", "SELECT * FROM frames LIMIT 1", patch=32, stride=32)
    figure = maps.figure()
    assert len(figure.axes) == 2 and len(figure.axes[0].get_images()) == 2  # the frame, the map over it; the colour scale
    png = str(tmp_path / "occlusion.png")
    assert con.sql(f"SELECT path FROM ml_plot('occlusion', 'cnn', '{png}', images := 'SELECT * FROM frames LIMIT 1')").fetchall() == [(png,)]
    text = "\n".join(lines(capsys))
    for what in ("APPLY LABELING FUNCTIONS ON t", "CREATE LABEL MODEL lm", "scanning t", "m epoch 1/1", "reading clip.avi",
                 "ml_video_inference cnn", "ml_occlusion_map cnn"):  # fmt: skip
        assert what in text, what


def test_the_logger_is_silent_until_configured(con, caplog, capsys):
    con.sql("CREATE TABLE t AS SELECT 1 AS a")
    con.sql("CREATE DATA SCHEMA s FROM t")
    assert capsys.readouterr().err == ""  # nothing printed by default
    with caplog.at_level(logging.INFO, logger="sqlml"):
        con.sql("CREATE OR REPLACE DATA SCHEMA s FROM t")
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("sqlml")]
    assert messages[0] == "CREATE DATA SCHEMA: started" and messages[-1].startswith("CREATE DATA SCHEMA: done in ")
