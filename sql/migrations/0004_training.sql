-- sqlml catalog, version 4: the model registry, training runs and checkpoints.

-- Every version of every model. `weights` is torch.save(state_dict), readable with
-- torch.load(..., weights_only=True); `features` is the feature spec (columns, kinds,
-- categories, normalisation, target) that turns inputs into the network's tensor.
CREATE TABLE IF NOT EXISTS sqlml.models (
    name         VARCHAR NOT NULL,
    version      INTEGER NOT NULL,
    architecture VARCHAR NOT NULL,
    task         VARCHAR NOT NULL,      -- 'classification' | 'regression'
    options      JSON,                  -- every option, defaults filled in
    query        VARCHAR,               -- the training query (NULL for imported weights)
    features     JSON,
    label        VARCHAR,
    classes      VARCHAR[],             -- class names in output order (NULL for regression)
    input_shape  INTEGER[],             -- shape of one example
    n_outputs    INTEGER NOT NULL,
    metrics      JSON,                  -- final training / validation metrics
    status       VARCHAR NOT NULL,      -- 'trained' | 'imported'
    created_at   TIMESTAMP NOT NULL DEFAULT current_timestamp,
    weights      BLOB NOT NULL
);

-- One row per finished epoch of a CREATE MODEL run (written as training goes, so a
-- run that failed or was interrupted keeps its epochs; its version never appears in
-- sqlml.models then).
CREATE TABLE IF NOT EXISTS sqlml.training_runs (
    run_id       VARCHAR NOT NULL,
    model        VARCHAR NOT NULL,
    version      INTEGER NOT NULL,
    strategy     VARCHAR NOT NULL,
    epoch        INTEGER NOT NULL,
    train_loss   DOUBLE,
    val_loss     DOUBLE,
    metrics      JSON,                  -- every validation metric of the epoch
    rows         BIGINT,
    seconds      DOUBLE,
    resumed_from INTEGER,               -- set on the first epoch after resuming from a checkpoint
    created_at   TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- The last checkpoint of an unfinished CREATE MODEL (model + optimizer state, epoch,
-- history). `fingerprint` identifies the statement and its data; re-running the same
-- statement resumes from here. Deleted when the model is saved.
CREATE TABLE IF NOT EXISTS sqlml.checkpoints (
    model        VARCHAR NOT NULL,
    fingerprint  VARCHAR NOT NULL,
    epoch        INTEGER NOT NULL,
    state        BLOB NOT NULL,
    created_at   TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- The last version number given to each model name, so numbers are never reused,
-- not even after DROP MODEL (prediction caches key on (model, version)).
CREATE TABLE IF NOT EXISTS sqlml.model_versions (
    name         VARCHAR NOT NULL,
    last_version INTEGER NOT NULL
);
