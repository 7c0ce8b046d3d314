-- Training macros: the model registry and training runs, readable from any DuckDB shell.

-- Every version of every model, newest first, without the weights.
CREATE OR REPLACE MACRO ml_model_versions() AS TABLE
    SELECT name, version, version = max(version) OVER (PARTITION BY name) AS latest, architecture, task,
           label, classes, input_shape, n_outputs, status, created_at, octet_length(weights) AS weight_bytes,
           metrics
    FROM sqlml.models
    ORDER BY name, version DESC;

-- The epochs of a model's training runs (a run that failed or was interrupted keeps its epochs).
CREATE OR REPLACE MACRO ml_training_runs(model_name) AS TABLE
    SELECT run_id, model, version, strategy, epoch, train_loss, val_loss, metrics, rows, seconds,
           resumed_from, created_at
    FROM sqlml.training_runs
    WHERE model = model_name
    ORDER BY created_at, epoch;
