-- sqlml catalog, version 8: one name, one object, also under concurrency.
--
-- Statements on several cursors each run in their own transaction and each see only what
-- was committed when it began, so "does the name exist?" checks cannot stop two cursors
-- creating the same name at once. These unique indexes can: of two transactions inserting
-- the same key the second to commit fails (sqlml reports it as ObjectExistsError). Changes
-- to an existing object update its directory row, and DuckDB refuses two concurrent
-- updates of one row, so those serialize too. (Within one process sqlml also claims a name
-- for the statement creating it: see sqlml/transaction.py.)
--
-- Rows duplicated by such races before this version: keep the newest directory row of each
-- (kind, name), and the first label set of each table (their contents are equal: the storage
-- is named from the table). The tables are rebuilt rather than deleted from, because DuckDB
-- builds an index over rows deleted earlier in the same transaction too.

CREATE TABLE sqlml.objects_0008 (
    kind       VARCHAR NOT NULL,
    name       VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
    updated_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
    properties JSON
);
INSERT INTO sqlml.objects_0008
SELECT kind, name, created_at, updated_at, properties FROM sqlml.objects
WHERE rowid IN (SELECT max(rowid) FROM sqlml.objects GROUP BY kind, name)
ORDER BY rowid;
DROP TABLE sqlml.objects;
ALTER TABLE sqlml.objects_0008 RENAME TO objects;
CREATE UNIQUE INDEX objects_kind_name ON sqlml.objects (kind, name);

CREATE TABLE sqlml.label_sets_0008 (
    table_name  VARCHAR NOT NULL,
    parts       VARCHAR[] NOT NULL,
    classes     VARCHAR[] NOT NULL,
    key_column  VARCHAR,
    key_type    VARCHAR,
    storage     VARCHAR NOT NULL,
    created_at  TIMESTAMP NOT NULL DEFAULT current_timestamp
);
INSERT INTO sqlml.label_sets_0008
SELECT table_name, parts, classes, key_column, key_type, storage, created_at FROM sqlml.label_sets
WHERE rowid IN (SELECT min(rowid) FROM sqlml.label_sets GROUP BY table_name)
ORDER BY rowid;
DROP TABLE sqlml.label_sets;
ALTER TABLE sqlml.label_sets_0008 RENAME TO label_sets;
CREATE UNIQUE INDEX label_sets_table ON sqlml.label_sets (table_name);

-- This database's identity: statements on cursors of one process claim the names they create
-- under it, so a second concurrent CREATE of a name fails at once instead of after its work.
INSERT INTO sqlml.meta SELECT 'instance', CAST(uuid() AS VARCHAR)
WHERE NOT EXISTS (SELECT 1 FROM sqlml.meta WHERE key = 'instance');
