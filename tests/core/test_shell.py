"""sqlml shell through stdin and a pseudo-terminal, and sqlml run exit codes."""

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import sqlml

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def sqlml_cli(*args, stdin_text=None):
    return subprocess.run(
        [sys.executable, "-m", "sqlml", *args], input=stdin_text, capture_output=True, text=True, env=ENV, timeout=120
    )


def test_shell_runs_a_script_from_stdin(db_path):
    script = """
CREATE TABLE t AS SELECT range AS id, range * 1.5 AS v FROM range(3);
SELECT id, v FROM t
  WHERE id < 2  -- multi-line statement
  ORDER BY id;
.mode csv
SELECT 'a,b' AS s, NULL AS n;
.mode json
SELECT 7 AS seven;
.tables
.schema t
"""
    done = sqlml_cli("shell", db_path, stdin_text=script)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "| id | v   |" in out and "|  1 | 1.5 |" in out and "(2 rows)" in out
    assert 's,n\n"a,b",\n' in out
    assert '{"seven": 7}' in out
    assert "\nt\n" in out
    assert "CREATE TABLE t(id BIGINT, v DECIMAL(" in out
    with sqlml.connect(db_path, read_only=True) as con:
        assert con.sql("SELECT count(*) FROM t").fetchall() == [(3,)]


def test_shell_stops_at_the_first_error_with_exit_code_1(db_path):
    done = sqlml_cli("shell", db_path, stdin_text="SELECT 1 AS ok;\nSELECT * FROM missing_table;\nSELECT 2 AS never;\n")
    assert done.returncode == 1
    assert "missing_table" in done.stderr and done.stderr.startswith("Error:")
    assert "ok" in done.stdout and "never" not in done.stdout


def test_shell_reports_sqlml_syntax_errors_with_a_caret(db_path):
    done = sqlml_cli("shell", db_path, stdin_text="SELECT 1 AS a;\nEXPLAIN ML ;\n")
    assert done.returncode == 1
    assert "expected a query after EXPLAIN ML" in done.stderr
    assert "(line 2, column 11)" in done.stderr
    assert done.stderr.splitlines()[-2:] == ["EXPLAIN ML ", "          ^"]


def test_run_exit_codes(db_path, tmp_path):
    good = tmp_path / "good.sql"
    good.write_text("CREATE TABLE x AS SELECT 42 AS answer;\nSELECT answer FROM x;\n")
    done = sqlml_cli("run", db_path, str(good))
    assert done.returncode == 0 and "42" in done.stdout
    bad = tmp_path / "bad.sql"
    bad.write_text("INSERT INTO x VALUES (1);\nSELECT nope FROM x;\nINSERT INTO x VALUES (2);\n")
    done = sqlml_cli("run", db_path, str(bad))
    assert done.returncode == 1 and "nope" in done.stderr
    with sqlml.connect(db_path, read_only=True) as con:
        assert con.sql("SELECT count(*) FROM x").fetchall() == [(2,)]  # stopped before the last insert
    done = sqlml_cli("run", db_path, str(tmp_path / "absent.sql"))
    assert done.returncode == 2 and "no file" in done.stderr


def test_read_runs_another_file(db_path, tmp_path):
    inner = tmp_path / "inner.sql"
    inner.write_text("CREATE TABLE from_read AS SELECT 5 AS five;\n")
    done = sqlml_cli("shell", db_path, stdin_text=f".read {inner}\nSELECT five FROM from_read;\n.read {tmp_path / 'nope.sql'}\n")
    assert done.returncode == 1
    assert "5" in done.stdout and "no file" in done.stderr


def _read_until(fd, marker: bytes, timeout: float = 180.0) -> bytes:
    data = b""
    deadline = time.time() + timeout
    while marker not in data:
        remaining = deadline - time.time()
        assert remaining > 0, f"timed out waiting for {marker!r}; got {data!r}"
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
    return data


def test_interactive_shell_in_a_pseudo_terminal(db_path, tmp_path):
    env = {**ENV, "SQLML_HISTORY": str(tmp_path / "history"), "TERM": "dumb"}
    pid, fd = pty.fork()
    if pid == 0:  # the child: the shell on a terminal
        os.execve(sys.executable, [sys.executable, "-m", "sqlml", "shell", db_path], env)
    try:
        banner = _read_until(fd, b"sqlml> ")
        assert b".help" in banner
        os.write(fd, b"SELECT 40 +\n")
        _read_until(fd, b"...> ")  # a statement goes on until ';'
        os.write(fd, b"2 AS answer;\n")
        assert b"42" in _read_until(fd, b"sqlml> ")
        os.write(fd, b".timer on\n")
        _read_until(fd, b"sqlml> ")
        os.write(fd, b"SELECT 1 AS one;\n")
        assert b"Run Time:" in _read_until(fd, b"sqlml> ")
        os.write(fd, b"SELECT * FROM nowhere;\n")
        assert b"nowhere" in _read_until(fd, b"sqlml> ")  # an error does not end the session
        os.write(fd, b".exit\n")
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 0
    finally:
        os.close(fd)
    assert "SELECT 1 AS one;" in (tmp_path / "history").read_text()
