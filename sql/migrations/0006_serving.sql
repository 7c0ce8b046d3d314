-- sqlml catalog, version 6: serving. The prediction cache and the online endpoint's logs.

-- Results of model calls, keyed by what determines them. cache_key is
-- hash(call signature, model version token, input values...): the signature holds the
-- function and any constant arguments; the token names the model and changes whenever
-- its weights do, so a new version never reads an old version's predictions.
CREATE TABLE IF NOT EXISTS sqlml.prediction_cache (
    cache_key  UBIGINT NOT NULL PRIMARY KEY,
    function   VARCHAR NOT NULL,
    model      VARCHAR NOT NULL,
    version    INTEGER NOT NULL,
    value      VARCHAR,            -- the result cast to text; read back with CAST(value AS <type>)
    created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- Counters per (function, model, version); token identifies the weights of that version.
CREATE TABLE IF NOT EXISTS sqlml.prediction_cache_stats (
    function   VARCHAR NOT NULL,
    model      VARCHAR NOT NULL,
    version    INTEGER NOT NULL,
    token      VARCHAR NOT NULL,
    lookups    BIGINT NOT NULL DEFAULT 0,   -- distinct inputs looked up
    hits       BIGINT NOT NULL DEFAULT 0,   -- found in the cache
    misses     BIGINT NOT NULL DEFAULT 0,   -- computed by the model and stored
    updated_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (function, model, version)
);

-- The online endpoint (sqlml serve): one row per HTTP request ...
CREATE TABLE IF NOT EXISTS sqlml.serving_requests (
    request_id  VARCHAR NOT NULL,
    received_at TIMESTAMP NOT NULL,
    model       VARCHAR,
    version     INTEGER,
    status      INTEGER NOT NULL,    -- HTTP status sent
    rows        INTEGER NOT NULL,    -- inputs in the request (0 when rejected)
    latency_ms  DOUBLE NOT NULL,     -- receipt to response
    error       VARCHAR,             -- the JSON error's message, NULL on success
    client      VARCHAR
);

-- ... and one row per prediction made: the input features as JSON and the result.
-- ml_serving_log(model) reads the features back as typed columns for ml_validate.
CREATE TABLE IF NOT EXISTS sqlml.serving_predictions (
    request_id  VARCHAR NOT NULL,
    row_index   INTEGER NOT NULL,
    model       VARCHAR NOT NULL,
    version     INTEGER NOT NULL,
    logged_at   TIMESTAMP NOT NULL,
    features    JSON NOT NULL,
    prediction  JSON,
    cached      BOOLEAN NOT NULL
);
