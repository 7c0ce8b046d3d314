-- sqlml catalog, version 3: data validation (statistics, data schemas and their versions).

-- One row per stored statistics set: a dataset (table, query or file) at a span.
CREATE SEQUENCE IF NOT EXISTS sqlml.statistics_ids START 1;
CREATE TABLE IF NOT EXISTS sqlml.statistics (
    stats_id    BIGINT NOT NULL,
    dataset     VARCHAR NOT NULL,        -- what the statistics describe (table name, query, file)
    span        VARCHAR,                 -- a batch of that dataset ('2013-02', 'day 9', ...); NULL: all of it
    source      VARCHAR,                 -- the source text that was scanned (or 'merged: ...')
    row_count   BIGINT NOT NULL,
    merged_from BIGINT[],                -- statistics ids this set was merged from (no rescan)
    created_at  TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- Per column: everything needed to merge sets without the rows (counts, sums, moments).
CREATE TABLE IF NOT EXISTS sqlml.statistics_columns (
    stats_id       BIGINT NOT NULL,
    position       INTEGER NOT NULL,
    column_name    VARCHAR NOT NULL,
    data_type      VARCHAR NOT NULL,
    kind           VARCHAR NOT NULL,     -- integer, float, boolean, string, temporal, list, other
    count          BIGINT NOT NULL,      -- non-NULL values
    missing        BIGINT NOT NULL,      -- NULL values
    nan            BIGINT NOT NULL,
    pos_inf        BIGINT NOT NULL,
    neg_inf        BIGINT NOT NULL,
    zeros          BIGINT NOT NULL,
    distinct_count DOUBLE,               -- exact when distinct_exact, else a HyperLogLog estimate
    distinct_exact BOOLEAN NOT NULL,
    min            DOUBLE,               -- finite numeric values
    max            DOUBLE,
    min_value      VARCHAR,              -- strings and temporal values, as text
    max_value      VARCHAR,
    finite         BIGINT NOT NULL,      -- values in mean, m2 and the sketch
    mean           DOUBLE,
    m2             DOUBLE,               -- sum of squared deviations from the mean
    std            DOUBLE,
    sum_length     BIGINT NOT NULL,      -- strings: characters; lists: elements
    min_length     BIGINT,
    max_length     BIGINT,
    empty          BIGINT NOT NULL,      -- empty strings or lists
    values_exact   BOOLEAN NOT NULL,     -- statistics_values holds every value
    values_floor   BIGINT NOT NULL,      -- else: no unlisted value occurs more often than this
    quantiles      DOUBLE[]              -- at sqlml quantile points (see ml_statistics)
);

-- Numeric sketch: counts over a fixed logarithmic grid (0.5% relative accuracy); merges by addition.
CREATE TABLE IF NOT EXISTS sqlml.statistics_sketches (
    stats_id    BIGINT NOT NULL,
    column_name VARCHAR NOT NULL,
    bucket      INTEGER NOT NULL,
    count       BIGINT NOT NULL
);

-- String and boolean values with their counts (all values, or the top ones and a floor).
CREATE TABLE IF NOT EXISTS sqlml.statistics_values (
    stats_id    BIGINT NOT NULL,
    column_name VARCHAR NOT NULL,
    value       VARCHAR NOT NULL,
    count       BIGINT NOT NULL
);

-- Equal-width and equal-mass (quantile) histograms derived from the sketch, for reading.
CREATE TABLE IF NOT EXISTS sqlml.statistics_histograms (
    stats_id    BIGINT NOT NULL,
    column_name VARCHAR NOT NULL,
    kind        VARCHAR NOT NULL,        -- 'equal_width' or 'quantiles'
    bucket      INTEGER NOT NULL,
    low         DOUBLE,
    high        DOUBLE,
    count       DOUBLE NOT NULL
);

-- Data schemas: every version is kept; a version's rows never change.
CREATE TABLE IF NOT EXISTS sqlml.data_schema_versions (
    schema_name    VARCHAR NOT NULL,
    version        INTEGER NOT NULL,
    parent_version INTEGER,
    created_at     TIMESTAMP NOT NULL DEFAULT current_timestamp,
    action         VARCHAR NOT NULL,     -- 'infer', 'accept', 'add check', 'drop check', 'set'
    source         VARCHAR,              -- the data the version was inferred from or accepted
    reason         VARCHAR,              -- why: the changes, in words
    stats_id       BIGINT,               -- statistics of the training data (skew baseline)
    min_rows       BIGINT,               -- dataset constraints
    max_rows       BIGINT,
    significance   DOUBLE NOT NULL,      -- per-test false-alarm probability
    properties     JSON
);

CREATE TABLE IF NOT EXISTS sqlml.data_schema_columns (
    schema_name      VARCHAR NOT NULL,
    version          INTEGER NOT NULL,
    position         INTEGER NOT NULL,
    column_name      VARCHAR NOT NULL,
    data_type        VARCHAR NOT NULL,
    kind             VARCHAR NOT NULL,
    min_fraction     DOUBLE NOT NULL,    -- presence: least fraction of non-NULL values
    domain           VARCHAR[],          -- categorical values (NULL: no domain)
    min_domain_mass  DOUBLE,             -- least fraction of values inside the domain
    min_value        DOUBLE,             -- numeric bounds (NULL: unbounded)
    max_value        DOUBLE,
    min_range_mass   DOUBLE,             -- least fraction of values inside the bounds
    allow_nan        BOOLEAN NOT NULL,
    allow_inf        BOOLEAN NOT NULL,
    is_unique        BOOLEAN NOT NULL,
    min_length       BIGINT,             -- list lengths (values per row)
    max_length       BIGINT,
    environments     VARCHAR[],          -- where the column is expected (NULL: everywhere)
    drift_jsd        DOUBLE,             -- least Jensen-Shannon divergence (bits) worth reporting
    drift_linf       DOUBLE,             -- least L-infinity distance worth reporting
    notes            VARCHAR             -- how inference decided
);

CREATE TABLE IF NOT EXISTS sqlml.data_schema_checks (
    schema_name VARCHAR NOT NULL,
    version     INTEGER NOT NULL,
    check_name  VARCHAR NOT NULL,
    scope       VARCHAR NOT NULL,        -- 'row' or 'statistics'
    expression  VARCHAR NOT NULL
);
