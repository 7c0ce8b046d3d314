import io

from sqlml.demo.tour import run_tour
from sqlml.render import render


def test_render_modes():
    columns, rows = ["name", "n", "v"], [("a", 1, [1.0, 2.0]), ("b|c", None, None)]
    table = render(columns, rows, "table")
    assert table.splitlines()[1] == "| name | n    | v      |"
    assert "| a    |    1 | [1, 2] |" in table and "(2 rows)" in table
    assert render(columns, rows, "csv").splitlines() == ["name,n,v", "a,1,\"[1, 2]\"", "b|c,,"]
    assert render(columns, rows, "json").splitlines()[0] == '{"name": "a", "n": 1, "v": [1.0, 2.0]}'
    assert render(columns, rows, "markdown").splitlines()[1] == "|------|-----:|--------|"


def test_tour_chapter_zero(tmp_path):
    out = io.StringIO()
    db = tmp_path / "tour.db"
    tour = run_tour(str(db), chapters=[0], quick=True, stream=out, out_dir=str(tmp_path / "out"))
    text = out.getvalue()
    assert tour.facts["flights"] == 336776
    assert "sqlml shell" in text and "flights" in text
    import sqlml

    with sqlml.connect(str(db), read_only=True) as con:
        assert con.sql("SELECT count(*) FROM flights WHERE dep_time IS NULL").fetchall() == [(8255,)]
