-- sqlml catalog, version 2: weak supervision (labeling functions, votes, label models).

-- One row per labeled table: its classes and where its votes live.
-- Votes of table T are in sqlml.votes_<h> (key, lf, label) and the rows APPLY has seen in
-- sqlml.rows_<h> (key), where <h> = left(md5(T), 16) and T is the table's name in
-- lower case without a leading 'main.' (so pure SQL can find them: see 10_labeling.sql).
CREATE TABLE IF NOT EXISTS sqlml.label_sets (
    table_name  VARCHAR NOT NULL,   -- canonical name, e.g. 'comments' or 'staging.comments'
    parts       VARCHAR[] NOT NULL, -- the name as written: [schema,] table
    classes     VARCHAR[] NOT NULL, -- declared once; votes store the 0-based index
    key_column  VARCHAR,            -- set by the first APPLY
    key_type    VARCHAR,
    storage     VARCHAR NOT NULL,   -- <h>
    created_at  TIMESTAMP NOT NULL DEFAULT current_timestamp
);

CREATE TABLE IF NOT EXISTS sqlml.labeling_functions (
    name                VARCHAR NOT NULL,
    table_name          VARCHAR NOT NULL,
    lf_id               SMALLINT NOT NULL,  -- the `lf` column of the votes table
    kind                VARCHAR NOT NULL,   -- 'sql' | 'python'
    definition          VARCHAR NOT NULL,   -- the SQL expression, or the Python source
    inputs              VARCHAR[],          -- Python LFs: the columns passed in
    output              VARCHAR NOT NULL,   -- 'name' (class names) | 'index' (0-based integers)
    fault_tolerant      BOOLEAN NOT NULL DEFAULT false,
    fingerprint         VARCHAR NOT NULL,   -- changes when the definition or classes change
    applied_fingerprint VARCHAR,            -- fingerprint of the votes stored now
    faults              BIGINT NOT NULL DEFAULT 0,
    applied_at          TIMESTAMP,
    created_at          TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- Learned per-LF accuracies of each fitted label model (ml_lf_summary shows the latest).
CREATE TABLE IF NOT EXISTS sqlml.label_model_lfs (
    model            VARCHAR NOT NULL,
    table_name       VARCHAR NOT NULL,
    lf               VARCHAR NOT NULL,
    learned_accuracy DOUBLE,
    fitted_at        TIMESTAMP NOT NULL
);
