-- sqlml catalog, version 7: materialized activations for incremental CNN inference.

-- One row per materialized state: the activations of a model's local layers after
-- frame `frame` of video `video`. `key_frame` is the frame of the last full pass the
-- state descends from; `exact` is false once an approximate update (threshold, tau)
-- touched it. `signature` fingerprints the traced graph, weights and input shape, so a
-- state is never reused with anything else.
CREATE TABLE IF NOT EXISTS sqlml.incremental_states (
    model      VARCHAR NOT NULL,
    version    INTEGER NOT NULL,
    video      VARCHAR NOT NULL,
    frame      BIGINT NOT NULL,
    key_frame  BIGINT,
    signature  VARCHAR NOT NULL,
    exact      BOOLEAN NOT NULL,
    layers     INTEGER NOT NULL,
    bytes      BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- The tensors of each state, one BLOB per (state, layer): raw little-endian values of
-- `dtype` in C order with `shape` (N, C, H, W).
CREATE TABLE IF NOT EXISTS sqlml.incremental_tensors (
    model     VARCHAR NOT NULL,
    version   INTEGER NOT NULL,
    video     VARCHAR NOT NULL,
    frame     BIGINT NOT NULL,
    layer     VARCHAR NOT NULL,
    shape     INTEGER[] NOT NULL,
    dtype     VARCHAR NOT NULL,
    data      BLOB NOT NULL
);
