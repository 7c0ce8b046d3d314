-- sqlml catalog, version 13: every ml_validate run, so the latest validation of a data schema
-- can be shown again (sqlml report, sqlml.views) without the data it read.

CREATE SEQUENCE IF NOT EXISTS sqlml.validation_run_ids START 1;
CREATE TABLE IF NOT EXISTS sqlml.validation_runs (
    run_id         BIGINT NOT NULL,
    schema_name    VARCHAR NOT NULL,
    schema_version INTEGER NOT NULL,
    source         VARCHAR NOT NULL,     -- the source as given: a table, a query, a file
    environment    VARCHAR,
    baseline       VARCHAR,
    errors         INTEGER NOT NULL,
    warnings       INTEGER NOT NULL,
    anomalies      JSON NOT NULL,        -- the rows ml_validate returned
    created_at     TIMESTAMP NOT NULL DEFAULT current_timestamp
);
