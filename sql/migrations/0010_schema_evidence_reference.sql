-- sqlml catalog, version 10: data schemas say why, hold strict valid ranges, and keep a drift reference.

-- Strict ranges: one value outside is an anomaly (TFDV's int_domain / float_domain min and max).
-- Inferred only on strong evidence (calendar units, integer codes with sharp edges, signs,
-- the unit interval); min_value / max_value stay the tolerant range.
ALTER TABLE sqlml.data_schema_columns ADD COLUMN IF NOT EXISTS valid_min DOUBLE;
ALTER TABLE sqlml.data_schema_columns ADD COLUMN IF NOT EXISTS valid_max DOUBLE;
-- Each constraint inference set, with the evidence in words and a confidence (NULL: set by hand
-- or written before version 10).
ALTER TABLE sqlml.data_schema_columns ADD COLUMN IF NOT EXISTS evidence
    STRUCT(kind VARCHAR, rule VARCHAR, reason VARCHAR, confidence DOUBLE)[];

-- The drift reference of a schema version: a compact summary of the data it was inferred from
-- (and the batches ACCEPT took in), so ml_validate measures drift with no baseline. One row per
-- column; versions without rows (older schemas) compare with nothing unless given a baseline.
CREATE TABLE IF NOT EXISTS sqlml.data_schema_reference (
    schema_name  VARCHAR NOT NULL,
    version      INTEGER NOT NULL,
    column_name  VARCHAR NOT NULL,
    data_type    VARCHAR NOT NULL,
    rows         BIGINT NOT NULL,        -- rows summarised (NULLs included)
    count        BIGINT NOT NULL,        -- non-NULL values
    finite       BIGINT NOT NULL,        -- numeric: values in mean, m2 and the bins
    mean         DOUBLE,
    m2           DOUBLE,                 -- sum of squared deviations from the mean
    cuts         INTEGER[],              -- numeric: sketch grid keys ending each drift bin (the last bin is open)
    bin_counts   BIGINT[],               -- values per drift bin (one more than cuts)
    "values"     VARCHAR[],              -- strings and booleans: the most frequent values ...
    value_counts BIGINT[],               -- ... and their counts
    values_exact BOOLEAN NOT NULL,       -- every value is listed
    values_floor BIGINT NOT NULL,        -- else: no unlisted value occurs more often than this
    clip_low     DOUBLE,                 -- numeric: the 0.1%-99.9% quantiles widened by half their spread ...
    clip_high    DOUBLE,
    clipped_mean DOUBLE,                 -- ... and the mean and variance of the values clipped to them
    clipped_var  DOUBLE
);
