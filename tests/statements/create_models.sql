# title: a grid of two learning rates: two models, the one with the lower loss marked best
# setup: CREATE TABLE t AS SELECT i AS id, (i % 10) / 10.0 AS x, (i % 10) / 5.0 + 1 AS y FROM range(40) r(i)
# expect: [["g_1", 1, "{\"lr\":0.01}", "train_loss", false], ["g_2", 1, "{\"lr\":0.1}", "train_loss", true]]
CREATE MODELS g FOR (lr IN (0.01, 0.1))
WITH (label := 'y', epochs := 1, seed := 0, hidden := [4], batch_size := 8, workers := 1) AS SELECT x, y FROM t;
SELECT model, version, params, metric, best FROM ml_model_grid('g') ORDER BY model;

# title: an option of the grid cannot vary
# setup: CREATE TABLE t AS SELECT i AS id, (i % 10) / 10.0 AS x, (i % 10) / 5.0 + 1 AS y FROM range(40) r(i)
# error: InvalidOptionError
CREATE MODELS g FOR (workers IN (1, 2)) WITH (label := 'y', epochs := 1) AS SELECT x, y FROM t;
SELECT (SELECT count(*) FROM sqlml.objects), (SELECT count(*) FROM sqlml.models), (SELECT count(*) FROM sqlml.model_versions);

# title: an option both varied and fixed
# setup: CREATE TABLE t AS SELECT i AS id, (i % 10) / 10.0 AS x, (i % 10) / 5.0 + 1 AS y FROM range(40) r(i)
# error: InvalidOptionError
CREATE MODELS g FOR (lr IN (0.01, 0.1)) WITH (label := 'y', epochs := 1, lr := 0.1, workers := 1) AS SELECT x, y FROM t;
SELECT (SELECT count(*) FROM sqlml.objects), (SELECT count(*) FROM sqlml.models), (SELECT count(*) FROM sqlml.model_versions);

# title: FOR without a name
# error: SqlmlSyntaxError
CREATE MODELS FOR (lr IN (0.01, 0.1)) WITH (label := 'y') AS SELECT 1 AS x, 2 AS y;
SELECT count(*) FROM sqlml.models;
