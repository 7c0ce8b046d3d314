"""sqlml report: the static page, written by the command and from SQL, and rendered by a real browser."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import sqlml

from . import browser

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def project_db(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("report") / "project.duckdb")
    with sqlml.connect(path) as con:
        con.sql(
            "CREATE TABLE t AS SELECT range AS id, (range % 10)::DOUBLE AS a, ['red', 'green', 'blue'][range % 3 + 1] AS colour, "
            "CASE WHEN range % 5 = 0 THEN CASE WHEN range % 10 < 5 THEN 'x' ELSE 'y' END END AS gold FROM range(500)"
        )
        con.sql("CREATE TABLE batch AS SELECT id, a + 30 AS a, 'purple' AS colour, gold FROM t LIMIT 80")
        con.sql("CREATE LABELING FUNCTION low ON t WITH (classes := ['x', 'y']) AS CASE WHEN a < 4 THEN 'x' END")
        con.sql("CREATE LABELING FUNCTION high ON t AS CASE WHEN a > 5 THEN 'y' END")
        con.sql("CREATE LABEL MODEL lm ON t KEY id GOLD gold")
        con.sql("CREATE DATA SCHEMA s FROM t")
        assert con.sql("SELECT count(*) FROM ml_validate('batch', 's')").fetchall()[0][0] > 0
        con.sql("CREATE MODEL m WITH (epochs := 2, validation_split := 0.2) AS SELECT t.a, l.label FROM t JOIN lm AS l USING (id)")
    return path


def test_the_report_command(project_db, tmp_path):
    out = tmp_path / "report.html"
    done = subprocess.run(
        [sys.executable, "-m", "sqlml", "report", project_db, "--out", str(out)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    page = out.read_text()
    for expected in ("data schema s", "latest validation against s v1: batch", "drift of batch", "labeling functions on t",
                     "label model lm", "model m", "data:image/png;base64,", "ENUM_TYPE_UNEXPECTED_STRING_VALUES"):  # fmt: skip
        assert expected in page, expected
    assert "<script" not in page and "sqlml-error" not in page.replace(".sqlml-error {", "")


def test_the_report_from_sql_with_svg_pictures(project_db, tmp_path):
    out = str(tmp_path / "r.html")
    with sqlml.connect(project_db, read_only=True) as con:
        [(path, size)] = con.sql(f"SELECT * FROM ml_report('{out}', picture := 'svg')").fetchall()
    assert path == out and size == os.path.getsize(out)
    assert "<svg" in Path(out).read_text()


def test_a_missing_database_is_refused(tmp_path):
    from sqlml.cli import main

    assert main(["report", str(tmp_path / "none.duckdb"), "--out", str(tmp_path / "x.html")]) == 1
    assert not (tmp_path / "none.duckdb").exists()


FACTS = """{
  title: document.title,
  sections: [...document.querySelectorAll('h2')].map(h => h.textContent),
  views: document.querySelectorAll('section.sqlml-view').length,
  images: document.images.length,
  drawn: [...document.images].filter(i => i.complete && i.naturalWidth > 100).length,
  tables: document.querySelectorAll('table.sqlml-table').length,
  height: document.body.scrollHeight
}"""

needs_browser = pytest.mark.skipif(browser.find() is None, reason="no Chromium installed (apt-get install chromium)")


@pytest.mark.slow
@needs_browser
def test_the_report_renders_in_headless_chromium(project_db, tmp_path):
    out = tmp_path / "report.html"
    with sqlml.connect(project_db, read_only=True) as con:
        from sqlml.report import write_report

        write_report(con, str(out))
    page = browser.open_page(out, FACTS)
    assert page.errors == []
    facts = page.facts
    assert facts["sections"] == ["Data schemas", "Labels", "Models", "Serving"]
    assert facts["images"] >= 5 and facts["drawn"] == facts["images"]  # every picture decoded
    assert facts["views"] >= 5 and facts["tables"] >= 5 and facts["height"] > 2000
    shot = browser.keep_screenshot(page, "sqlml-report.png")
    assert page.screenshot[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000


@pytest.mark.slow
@needs_browser
def test_the_browser_check_catches_a_broken_page(tmp_path):
    """The harness itself: a console error, an exception and a missing picture are reported."""
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><img src="missing.png"><script>console.error("boom"); undefined_call();</script></body></html>')
    page = browser.open_page(bad, "{images: document.images.length}")
    text = " ".join(page.errors)
    assert "boom" in text and "undefined_call" in text and ("missing.png" in text or "ERR_FILE_NOT_FOUND" in text), page.errors
