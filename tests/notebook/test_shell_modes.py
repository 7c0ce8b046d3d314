"""The shell's output: DuckDB-style modes, and wide cells that wrap instead of being cut."""

import io

from sqlml.render import render
from sqlml.shell import Shell

LONG = "SELECT carrier, ml_predict('delay', carrier, origin, distance) AS p FROM flights WHERE month = 2 ORDER BY 1"


def test_box_and_line_modes():
    box = render(["name", "n"], [("a", 1), ("b", None)], "box")
    assert box.splitlines()[0] == "┌──────┬──────┐" and "│ a    │    1 │" in box and box.splitlines()[-2] == "└──────┴──────┘"
    assert render(["name", "n"], [("a", 1), ("bb", 2)], "line") == "name = a\n   n = 1\n\nname = bb\n   n = 2"


def test_wide_cells_wrap_to_the_width_and_keep_every_character():
    table = render(["step", "sql"], [(1, LONG), (2, "line one\nline two")], "table", width=60)
    lines = table.splitlines()
    assert max(len(line) for line in lines) <= 60
    body = " ".join(line.split("|")[2].strip() for line in lines[3:-2] if line.startswith("|"))
    assert body.replace(" ", "") == (LONG + "line oneline two").replace(" ", "")  # nothing cut
    assert "…" not in table
    unlimited = render(["sql"], [(LONG,)], "table")
    assert LONG in unlimited  # off a terminal: one line, whole


def test_shell_mode_and_width_commands(con):
    out = io.StringIO()
    shell = Shell(con, out=out)
    shell.run_text(f".mode box\n.width 50\nSELECT '{LONG.replace(chr(39), chr(39) * 2)}' AS query;\n.mode line\nSELECT 1 AS a, 2 AS b;\n", stop_on_error=True)
    text = out.getvalue()
    assert text.startswith("┌") and max(len(line) for line in text.splitlines()) <= 50
    assert "a = 1\nb = 2" in text
    shell.dot(".width auto")
    assert shell.screen_width() is None  # a StringIO is no terminal
