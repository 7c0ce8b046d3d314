-- sqlml catalog, version 8: one name, one object, also under concurrency.
--
-- Statements on several cursors each run in their own transaction and each see only what
-- was committed when it began, so "does the name exist?" checks cannot stop two cursors
-- creating the same name at once. These unique indexes can: of two transactions inserting
-- the same key the second to commit fails (DuckDB raises a TransactionException, which
-- sqlml reports as ObjectExistsError). Changes to an existing object update its directory
-- row, and DuckDB refuses two concurrent updates of one row, so those serialize too.

-- Rows duplicated by such races before this version: keep the newest directory row of
-- each (kind, name), and the first label set of each table (their contents are equal:
-- the storage is named from the table).
DELETE FROM sqlml.objects
WHERE rowid NOT IN (SELECT max(rowid) FROM sqlml.objects GROUP BY kind, name);
DELETE FROM sqlml.label_sets
WHERE rowid NOT IN (SELECT min(rowid) FROM sqlml.label_sets GROUP BY table_name);

CREATE UNIQUE INDEX IF NOT EXISTS objects_kind_name ON sqlml.objects (kind, name);
CREATE UNIQUE INDEX IF NOT EXISTS label_sets_table ON sqlml.label_sets (table_name);

-- This database's identity: statements on cursors of one process claim the names they create
-- under it, so a second concurrent CREATE of a name fails at once instead of after its work.
INSERT INTO sqlml.meta SELECT 'instance', CAST(uuid() AS VARCHAR)
WHERE NOT EXISTS (SELECT 1 FROM sqlml.meta WHERE key = 'instance');
