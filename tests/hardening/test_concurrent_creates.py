"""Issue 15, row 2: concurrent CREATEs of one name from several cursors: one winner, typed errors.

Each kind of object is created under one name from several threads at once (each with
its own cursor, released together by a barrier): exactly one statement succeeds, every
other one raises ObjectExistsError, and the catalog holds exactly one object.
"""

from __future__ import annotations

import threading

import duckdb
import pytest

import sqlml
from sqlml import catalog
from sqlml.errors import ObjectExistsError

THREADS = 3


def race(con, statements: list[str]) -> list[BaseException | None]:
    barrier = threading.Barrier(len(statements))
    outcome: list[BaseException | None] = [None] * len(statements)

    def run(i: int) -> None:
        cursor = con.cursor()
        barrier.wait()
        try:
            cursor.sql(statements[i])
        except BaseException as error:  # noqa: BLE001 - collected and checked below
            outcome[i] = error
        finally:
            cursor.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(statements))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcome


def winners(outcome) -> int:
    """How many statements won a race that loses with ConflictError (run it again)."""
    from sqlml.errors import ConflictError

    assert all(o is None or isinstance(o, ConflictError) for o in outcome), outcome
    return sum(o is None for o in outcome)


@pytest.fixture
def data(con):
    con.sql("CREATE TABLE tr AS SELECT range AS id, (range % 7)::DOUBLE AS x, CASE WHEN range % 2 = 0 THEN 'a' ELSE 'b' END AS label FROM range(200)")
    con.sql("CREATE TABLE c AS SELECT range AS id FROM range(50)")
    return con


CASES = {
    "model": ("CREATE MODEL same WITH (epochs := 1, hidden := [4], seed := {i}) AS SELECT x, label FROM tr", "SELECT count(*), count(DISTINCT version) FROM sqlml.models WHERE name = 'same'"),
    "labeling function": ("CREATE LABELING FUNCTION same ON c WITH (classes := ['p', 'q']) AS CASE WHEN id > {i} THEN 'p' END", "SELECT count(*), count(DISTINCT lf_id) FROM sqlml.labeling_functions WHERE name = 'same'"),
    "data schema": ("CREATE DATA SCHEMA same FROM (SELECT * FROM tr WHERE id >= {i})", "SELECT count(*), count(DISTINCT version) FROM sqlml.data_schema_versions WHERE schema_name = 'same'"),
    "label model": ("CREATE LABEL MODEL same ON c KEY id WITH (seed := {i})", "SELECT count(*), count(*) FROM sqlml.label_model_lfs WHERE model = 'same' AND lf = 'lf'"),
}


@pytest.mark.parametrize("kind", list(CASES))
def test_one_winner_and_object_exists_errors(data, kind):
    con = data
    if kind == "label model":
        con.sql("CREATE LABELING FUNCTION lf ON c WITH (classes := ['p', 'q']) AS CASE WHEN id > 20 THEN 'p' END")
        con.sql("APPLY LABELING FUNCTIONS ON c KEY id")
    statement, rows = CASES[kind]
    outcome = race(con, [statement.format(i=i) for i in range(THREADS)])
    winners = [o for o in outcome if o is None]
    losers = [o for o in outcome if o is not None]
    assert len(winners) == 1, outcome
    assert all(isinstance(o, ObjectExistsError) and o.kind == kind and o.name == "same" for o in losers), outcome
    assert con.sql(rows).fetchall() == [(1, 1)]
    assert con.sql(f"SELECT count(*) FROM sqlml.objects WHERE kind = '{kind}' AND name = 'same'").fetchall() == [(1,)]
    # the winner's object is whole and usable
    again = con.cursor()
    with pytest.raises(ObjectExistsError, match="already exists"):
        again.sql(statement.format(i=99))


def test_labeling_functions_on_one_table_never_share_an_id(data):
    """Different names on one table: serialized on the table's label set (a loser is told to run again)."""
    con = data
    con.sql("CREATE LABELING FUNCTION first ON c WITH (classes := ['p', 'q']) AS CASE WHEN id > 1 THEN 'p' END")
    won = winners(race(con, [f"CREATE LABELING FUNCTION lf_{i} ON c AS CASE WHEN id > {i} THEN 'q' END" for i in range(THREADS)]))
    ids = con.sql("SELECT lf_id FROM sqlml.labeling_functions WHERE table_name = 'c'").fetchall()
    assert len(ids) == len(set(ids)) == 1 + won


def test_or_replace_races_leave_one_consistent_object(data):
    con = data
    con.sql("CREATE DATA SCHEMA s FROM tr")
    won = winners(race(con, [f"ALTER DATA SCHEMA s SET COLUMN x (max := {10 + i})" for i in range(THREADS)]))
    versions = con.sql("SELECT version FROM sqlml.data_schema_versions WHERE schema_name = 's' ORDER BY 1").fetchall()
    assert versions == [(v,) for v in range(1, 2 + won)]


def test_catalog_refuses_a_duplicate_name_even_without_sqlml(db_path):
    """The unique index itself (migration 0008): two transactions inserting one name, the second commit fails."""
    sqlml.connect(db_path).close()
    duck = duckdb.connect(db_path)
    a, b = duck.cursor(), duck.cursor()
    a.execute("BEGIN")
    b.execute("BEGIN")
    a.execute("INSERT INTO sqlml.objects (kind, name) VALUES ('model', 'x')")
    b.execute("INSERT INTO sqlml.objects (kind, name) VALUES ('model', 'x')")
    a.execute("COMMIT")
    with pytest.raises(duckdb.TransactionException, match="duplicate key"):
        b.execute("COMMIT")
    assert duck.execute("SELECT count(*) FROM sqlml.objects WHERE name = 'x'").fetchall() == [(1,)]


def test_migration_keeps_one_row_of_names_duplicated_by_old_races(db_path, monkeypatch):
    """A catalog at version 7 with the duplicates the issue's races left migrates to 8 cleanly."""
    duck = duckdb.connect(db_path)
    catalog.migrate(duck, up_to=7)
    for props in ("{\"v\": 1}", "{\"v\": 2}", "{\"v\": 3}"):
        duck.execute("INSERT INTO sqlml.objects (kind, name, properties) VALUES ('model', 'same', ?)", [props])
    for _ in range(2):
        duck.execute("INSERT INTO sqlml.label_sets (table_name, parts, classes, storage) VALUES ('c', ['c'], ['p', 'q'], 'h')")
    duck.close()
    with sqlml.connect(db_path) as con:
        assert catalog.catalog_version(con.duckdb) >= 8
        assert con.sql("SELECT properties::VARCHAR FROM sqlml.objects").fetchall() == [('{"v": 3}',)]
        assert con.sql("SELECT count(*) FROM sqlml.label_sets").fetchall() == [(1,)]
