import os
import shutil

import duckdb
import pytest

import sqlml
from sqlml import catalog, resources


def test_catalog_created_on_first_connect(con):
    assert catalog.catalog_version(con.duckdb) == catalog.latest_version() >= 1
    rows = dict(con.sql("SELECT key, value FROM sqlml.meta").fetchall())
    assert rows.keys() == {"catalog_version", "instance"}  # instance: see 0008_unique_names.sql
    assert rows["catalog_version"] == str(catalog.latest_version())


def test_catalog_migrates_forward(db_path, tmp_path, monkeypatch):
    sqlml.connect(db_path).close()
    version = catalog.latest_version()
    # a later sqlml release ships one more migration
    extra = tmp_path / f"{version + 1:04d}_future.sql"
    extra.write_text("CREATE TABLE sqlml.future_things (id INTEGER);")
    shipped = resources.migrations()
    monkeypatch.setattr(resources, "migrations", lambda: [*shipped, (version + 1, extra)])
    with sqlml.connect(db_path) as con:
        assert catalog.catalog_version(con.duckdb) == version + 1
        assert con.sql("SELECT count(*) FROM sqlml.future_things").fetchall() == [(0,)]
    # and opening again applies nothing twice
    with sqlml.connect(db_path) as con:
        assert con.sql("SELECT count(*) FROM sqlml.meta").fetchall() == [(2,)]


def test_failed_migration_leaves_the_old_catalog(db_path, tmp_path, monkeypatch):
    sqlml.connect(db_path).close()
    version = catalog.latest_version()
    broken = tmp_path / f"{version + 1:04d}_broken.sql"
    broken.write_text("CREATE TABLE sqlml.half (id INTEGER); SELECT * FROM no_such_table;")
    shipped = resources.migrations()
    monkeypatch.setattr(resources, "migrations", lambda: [*shipped, (version + 1, broken)])
    with pytest.raises(duckdb.CatalogException):
        sqlml.connect(db_path)
    monkeypatch.undo()
    with sqlml.connect(db_path) as con:
        assert catalog.catalog_version(con.duckdb) == version
        assert con.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'half'").fetchall() == [(0,)]


def test_read_only_connection_never_touches_the_catalog(db_path, tmp_path):
    raw = duckdb.connect(db_path)
    raw.execute("CREATE TABLE plain AS SELECT 1 AS x")
    raw.close()
    before = open(db_path, "rb").read()
    with sqlml.connect(db_path, read_only=True) as ro:
        assert ro.sql("SELECT x FROM plain").fetchall() == [(1,)]
        assert catalog.catalog_version(ro.duckdb) == 0
        with pytest.raises(duckdb.Error):
            ro.sql("CREATE TABLE other AS SELECT 2")
    assert open(db_path, "rb").read() == before
    # the same file opened read-write gets its catalog
    with sqlml.connect(db_path) as rw:
        assert catalog.catalog_version(rw.duckdb) == catalog.latest_version()


def test_object_directory_suggests_near_names(con):
    catalog.put_object(con.duckdb, "model", "delay_classifier", {"v": 1})
    with pytest.raises(sqlml.UnknownObjectError) as info:
        catalog.require_object(con.duckdb, "model", "delay_clasifier")
    assert info.value.suggestions == ["delay_classifier"]
    assert "Did you mean 'delay_classifier'?" in str(info.value)
    assert catalog.delete_object(con.duckdb, "model", "delay_classifier")
    assert catalog.get_object(con.duckdb, "model", "delay_classifier") is None


def test_wal_free_file_is_portable(db_path, tmp_path):
    with sqlml.connect(db_path) as con:
        con.sql("CREATE TABLE t AS SELECT 1 AS x")
    copy = tmp_path / "copy.duckdb"
    shutil.copy(db_path, copy)
    assert not os.path.exists(str(copy) + ".wal")
    with sqlml.connect(str(copy), read_only=True) as ro:
        assert ro.sql("SELECT x FROM t").fetchall() == [(1,)]
