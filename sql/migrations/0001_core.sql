-- sqlml catalog, version 1: the schema, its version row, and the object directory.
CREATE SCHEMA IF NOT EXISTS sqlml;

CREATE TABLE IF NOT EXISTS sqlml.meta (
    key   VARCHAR NOT NULL,   -- 'catalog_version', 'created_by', ...
    value VARCHAR NOT NULL
);

-- Every named sqlml object (labeling function, label model, data schema, model, ...),
-- one row per (kind, name). Areas keep their details in their own tables.
CREATE TABLE IF NOT EXISTS sqlml.objects (
    kind       VARCHAR NOT NULL,
    name       VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
    updated_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
    properties JSON
);
