-- sqlml catalog, version 11: rollout. Aliases, traffic splits and lineage of model versions.

-- A name for a version: ALTER MODEL m SET ALIAS production = 3; 'm@production' then
-- means m@3 wherever a model reference is read (ml_predict, sqlml serve, EXPORT MODEL).
CREATE TABLE IF NOT EXISTS sqlml.model_aliases (
    name       VARCHAR NOT NULL,
    alias      VARCHAR NOT NULL,
    version    INTEGER NOT NULL,
    updated_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- A traffic split over aliases or versions (ALTER MODEL m SET TRAFFIC production = 90,
-- candidate = 10): what `sqlml serve DB --model m` sends each request to. `target` is an
-- alias or a version number written as text; weights are relative.
CREATE TABLE IF NOT EXISTS sqlml.model_traffic (
    name       VARCHAR NOT NULL,
    position   INTEGER NOT NULL,
    target     VARCHAR NOT NULL,
    weight     DOUBLE NOT NULL,
    updated_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- What each version was trained on: the training query's tables, the label model behind
-- its labels, the data schema version and the validation result (ml_lineage('m')).
ALTER TABLE sqlml.models ADD COLUMN IF NOT EXISTS lineage JSON;
