"""``sqlml shell``: a DuckDB-style REPL that runs sqlml statements as well as plain SQL.

Interactive on a terminal (readline history, multi-line input that ends at ``;``),
or reading a script from a pipe (``sqlml shell db < script.sql``), where the first
failing statement stops the run with its error on stderr and exit code 1.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

from sqlml.query.tokens import split_statements, tokenize
from sqlml.render import MODES, render

HELP = """\
.exit, .quit            leave the shell
.help                   this text
.mode MODE              output mode, as the DuckDB shell's: table (default), box,
                        line (one column per line), csv, json, markdown
.width N|auto           wrap table cells so rows fit N characters (auto: the
                        terminal's width; 0: never wrap); cells are never cut
.pager on|off           page long results through $PAGER (less) on a terminal
.read FILE              run the SQL in FILE
.schema [TABLE]         CREATE statements of all tables and views, or of one
.tables                 tables and views (the sqlml catalog schema excluded)
.timer on|off           print how long each statement took
Anything else is SQL; end statements with ';'. sqlml statements (CREATE MODEL,
CREATE LABELING FUNCTION, CREATE DATA SCHEMA, ...) and ml_* functions work too."""

PROMPT, CONTINUATION = "sqlml> ", "   ...> "


class ShellExit(Exception):
    pass


class Shell:
    def __init__(self, con, *, out=None, err=None):
        self.con = con
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.mode = "table"
        self.timer = False
        self.width: int | None = None  # None: the terminal's width when printing to one
        self.pager = False

    # -- running input --------------------------------------------------------------------
    def run_text(self, text: str, *, stop_on_error: bool) -> bool:
        """Run dot commands and SQL statements in ``text``; False when something failed."""
        ok = True
        buffer: list[str] = []
        for line in text.splitlines(keepends=True):
            pending = "".join(buffer)
            if line.lstrip().startswith(".") and (not pending.strip() or statement_complete(pending)):
                buffer.clear()
                if pending.strip() and not self.run_sql(pending, stop_on_error=stop_on_error):
                    ok = False
                    if stop_on_error:
                        return False
                try:
                    self.dot(line.strip())
                except ShellExit:
                    raise
                except Exception as error:  # noqa: BLE001 - report and go on
                    self.report(error)
                    ok = False
                    if stop_on_error:
                        return False
                continue
            buffer.append(line)
        rest = "".join(buffer)
        if rest.strip():
            ok = self.run_sql(rest, stop_on_error=stop_on_error) and ok
        return ok

    def run_sql(self, text: str, *, stop_on_error: bool = True) -> bool:
        ok = True
        for start, end in split_statements(text):
            statement = text[start:end]
            try:
                self.execute(statement)
            except ShellExit:
                raise
            except Exception as error:  # noqa: BLE001 - report and go on
                self.report(error)
                ok = False
                if stop_on_error:
                    return False
        return ok

    def execute(self, statement: str) -> None:
        started = time.perf_counter()
        relation = self.con.sql(statement)
        if relation is not None:
            columns = list(relation.columns)
            rows = relation.fetchall()
            text = render(columns, rows, self.mode, width=self.screen_width())
            if self.pager and self._on_terminal() and text.count("\n") >= shutil.get_terminal_size().lines - 2:
                import pydoc

                pydoc.pager(text)
            else:
                print(text, file=self.out)
        if self.timer:
            print(f"Run Time: {time.perf_counter() - started:.3f}s", file=self.out)
        self.out.flush()

    def _on_terminal(self) -> bool:
        isatty = getattr(self.out, "isatty", None)
        return bool(callable(isatty) and isatty())

    def screen_width(self) -> int | None:
        """The width table cells wrap to: set by .width, else the terminal's (None off a terminal)."""
        if self.width is not None:
            return self.width or None
        return shutil.get_terminal_size().columns if self._on_terminal() else None

    def report(self, error: BaseException) -> None:
        print(f"Error: {error}", file=self.err)
        self.err.flush()

    # -- dot commands -------------------------------------------------------------------------
    def dot(self, line: str) -> None:
        command, _, argument = line.partition(" ")
        argument = argument.strip()
        handler = DOT_COMMANDS.get(command.lower())
        if handler is None:
            raise ValueError(f"unknown command {command}; .help lists the commands")
        handler(self, argument)

    def dot_exit(self, _argument: str) -> None:
        raise ShellExit

    def dot_help(self, _argument: str) -> None:
        print(HELP, file=self.out)

    def dot_mode(self, argument: str) -> None:
        if argument not in MODES:
            raise ValueError(f".mode {argument!r}: use one of {', '.join(MODES)}")
        self.mode = argument

    def dot_width(self, argument: str) -> None:
        if argument.lower() == "auto":
            self.width = None
            return
        if not argument.isdigit():
            raise ValueError(".width takes a number of characters (0: never wrap) or auto")
        self.width = int(argument)

    def dot_pager(self, argument: str) -> None:
        if argument.lower() not in ("on", "off"):
            raise ValueError(".pager takes on or off")
        self.pager = argument.lower() == "on"

    def dot_timer(self, argument: str) -> None:
        if argument.lower() not in ("on", "off"):
            raise ValueError(".timer takes on or off")
        self.timer = argument.lower() == "on"

    def dot_read(self, argument: str) -> None:
        path = Path(argument.strip("'\""))
        if not path.is_file():
            raise FileNotFoundError(f".read: no file {str(path)!r}")
        if not self.run_text(path.read_text(), stop_on_error=True):
            raise RuntimeError(f".read {path}: stopped at the first failing statement")

    def dot_tables(self, _argument: str) -> None:
        rows = self.con.duckdb.execute(
            "SELECT CASE WHEN schema_name = 'main' THEN table_name ELSE schema_name || '.' || table_name END "
            "FROM (SELECT schema_name, table_name FROM duckdb_tables() WHERE NOT internal AND schema_name <> 'sqlml' "
            "      UNION ALL SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal AND schema_name <> 'sqlml') "
            "ORDER BY 1"
        ).fetchall()
        names = [r[0] for r in rows]
        if names:
            width = max(len(n) for n in names) + 2
            per_line = max(1, 80 // width)
            for i in range(0, len(names), per_line):
                print("".join(n.ljust(width) for n in names[i : i + per_line]).rstrip(), file=self.out)

    def dot_schema(self, argument: str) -> None:
        sql = (
            "SELECT sql FROM (SELECT table_name AS name, sql FROM duckdb_tables() WHERE NOT internal "
            "UNION ALL SELECT view_name, sql FROM duckdb_views() WHERE NOT internal) "
            "WHERE ? = '' OR lower(name) = lower(?) ORDER BY name"
        )
        rows = self.con.duckdb.execute(sql, [argument, argument]).fetchall()
        if argument and not rows:
            raise ValueError(f".schema: no table or view named {argument!r}")
        for (text,) in rows:
            print(text.rstrip(";") + ";", file=self.out)

    # -- the interactive loop -------------------------------------------------------------------
    def interact(self) -> int:
        history = _setup_readline()
        print(f"sqlml shell on {self.con.database} — .help for commands, .exit to leave", file=self.out)
        buffer: list[str] = []
        try:
            while True:
                try:
                    line = input(CONTINUATION if buffer else PROMPT)
                except EOFError:
                    print(file=self.out)
                    break
                except KeyboardInterrupt:
                    print("^C", file=self.out)
                    buffer.clear()
                    continue
                if not buffer and line.lstrip().startswith("."):
                    try:
                        self.dot(line.strip())
                    except ShellExit:
                        break
                    except Exception as error:  # noqa: BLE001
                        self.report(error)
                    continue
                buffer.append(line + "\n")
                text = "".join(buffer)
                if statement_complete(text):
                    buffer.clear()
                    try:
                        self.run_sql(text, stop_on_error=False)
                    except ShellExit:
                        break
                    except KeyboardInterrupt:
                        print("Interrupted", file=self.err)
        finally:
            _save_history(history)
        return 0


DOT_COMMANDS = {
    ".exit": Shell.dot_exit,
    ".quit": Shell.dot_exit,
    ".help": Shell.dot_help,
    ".mode": Shell.dot_mode,
    ".read": Shell.dot_read,
    ".schema": Shell.dot_schema,
    ".tables": Shell.dot_tables,
    ".timer": Shell.dot_timer,
    ".width": Shell.dot_width,
    ".pager": Shell.dot_pager,
}


def statement_complete(text: str) -> bool:
    """Whether ``text`` ends with a ``;`` outside strings and comments."""
    tokens = [t for t in tokenize(text)]
    return bool(tokens) and tokens[-1].kind == "operator" and tokens[-1].text == ";"


def _history_path() -> Path:
    return Path(os.environ.get("SQLML_HISTORY", Path.home() / ".sqlml_history"))


def _setup_readline():
    try:
        import readline
    except ImportError:  # pragma: no cover - no readline on this platform
        return None
    path = _history_path()
    try:
        if path.exists():
            readline.read_history_file(path)
    except OSError:
        pass
    readline.set_history_length(2000)
    return readline


def _save_history(readline) -> None:
    if readline is None:
        return
    try:
        readline.write_history_file(_history_path())
    except OSError:
        pass


def main(database: str, *, stdin=None) -> int:
    """``sqlml shell DATABASE``: interactive on a terminal, a script runner on a pipe."""
    import sqlml

    stdin = stdin or sys.stdin
    with sqlml.connect(database) as con:
        shell = Shell(con)
        if stdin.isatty():
            return shell.interact()
        try:
            ok = shell.run_text(stdin.read(), stop_on_error=True)
        except ShellExit:
            return 0
        return 0 if ok else 1


def run_file(database: str, path: str) -> int:
    """``sqlml run DATABASE FILE.sql``: run a script; exit 1 at the first failing statement."""
    import sqlml

    script = Path(path)
    if not script.is_file():
        print(f"Error: no file {path!r}", file=sys.stderr)
        return 2
    with sqlml.connect(database) as con:
        shell = Shell(con)
        try:
            ok = shell.run_text(script.read_text(), stop_on_error=True)
        except ShellExit:
            return 0
    return 0 if ok else 1
