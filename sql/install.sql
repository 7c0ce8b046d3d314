-- sqlml pure-SQL macros for a plain DuckDB shell. Generated from sql/macros/*.sql
-- by `make install-sql`; do not edit by hand. Idempotent: run it again at will.
-- Needs a database file sqlml has opened once (it creates the sqlml catalog).

-- ===== 00_core.sql =====
-- Core macros: the catalog version and the object directory, readable from any DuckDB shell.

-- The catalog version of this database (sqlml.meta).
CREATE OR REPLACE MACRO ml_catalog_version() AS (
    SELECT CAST(max(value) AS INTEGER) FROM sqlml.meta WHERE key = 'catalog_version'
);

-- Objects of one kind ('labeling function', 'label model', 'data schema', 'model', ...).
CREATE OR REPLACE MACRO ml_objects(object_kind) AS TABLE
    SELECT kind, name, created_at, updated_at, properties
    FROM sqlml.objects
    WHERE kind = object_kind
    ORDER BY name;
